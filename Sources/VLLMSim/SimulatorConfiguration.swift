/// How the simulated vLLM server behaves: its model, auth, pacing and injected faults.
public struct SimulatorConfiguration: Sendable {
    /// The name clients use in `model` (`--served-model-name`).
    public var servedModelName: String
    /// The `root` reported by `/v1/models` (vLLM's model path).
    public var modelRoot: String
    /// Keys for vLLM's `--api-key`; empty means no authentication at all.
    public var apiKeys: [String]
    public var maxModelLen: Int
    /// Time from admission to the first token (prefill); the socket stays silent meanwhile, as in vLLM.
    public var timeToFirstToken: Duration
    /// Time between tokens after the first.
    public var interTokenLatency: Duration
    /// Tokens the "model" produces before stopping on its own (`finish_reason: stop`).
    public var outputTokens: Int
    /// Sequences generated at once (`--max-num-seqs`); further requests wait and show in `num_requests_waiting`.
    public var maxNumSeqs: Int?
    public var faults: SimulatorFaults
    /// Reported by `/version`.
    public var version: String
    /// Older vLLM (≤ 0.9) put errors at the top level with `"object":"error"`.
    public var legacyErrorShape: Bool
    /// `--shutdown-timeout`: how long SIGTERM lets in-flight requests finish (zero aborts them at once).
    public var shutdownTimeout: Duration
    /// `false` closes every connection once its response ends (uvicorn with `VLLM_HTTP_TIMEOUT_KEEP_ALIVE=0` closes
    /// it as soon as it idles): each request through a proxy then opens a connection of its own.
    public var keepAlive: Bool

    public init(
        servedModelName: String = "sim-model",
        modelRoot: String? = nil,
        apiKeys: [String] = [],
        maxModelLen: Int = 32_768,
        timeToFirstToken: Duration = .zero,
        interTokenLatency: Duration = .zero,
        outputTokens: Int = 16,
        maxNumSeqs: Int? = nil,
        faults: SimulatorFaults = SimulatorFaults(),
        version: String = "0.19.0",
        legacyErrorShape: Bool = false,
        shutdownTimeout: Duration = .zero,
        keepAlive: Bool = true
    ) {
        self.servedModelName = servedModelName
        self.modelRoot = modelRoot ?? "/models/\(servedModelName)"
        self.apiKeys = apiKeys
        self.maxModelLen = maxModelLen
        self.timeToFirstToken = timeToFirstToken
        self.interTokenLatency = interTokenLatency
        self.outputTokens = outputTokens
        self.maxNumSeqs = maxNumSeqs
        self.faults = faults
        self.version = version
        self.legacyErrorShape = legacyErrorShape
        self.shutdownTimeout = shutdownTimeout
        self.keepAlive = keepAlive
    }
}

/// Faults to inject, server-wide (flags, `POST /sim/faults`) or per request (`x-sim-fault` header).
public struct SimulatorFaults: Sendable, Equatable {
    /// Share of generation requests answered 500 before any token.
    public var failPercent: Int = 0
    /// Close the connection without a goodbye after this many tokens.
    public var closeAfterTokens: Int?
    /// Send an in-stream error event (then `[DONE]`) after this many tokens.
    public var errorAfterTokens: Int?
    /// Hold back the response head this long.
    public var headDelay: Duration = .zero
    /// Answer `/health` with 503 (engine dead).
    public var unhealthy: Bool = false

    public init(failPercent: Int = 0, closeAfterTokens: Int? = nil, errorAfterTokens: Int? = nil,
                headDelay: Duration = .zero, unhealthy: Bool = false) {
        self.failPercent = failPercent
        self.closeAfterTokens = closeAfterTokens
        self.errorAfterTokens = errorAfterTokens
        self.headDelay = headDelay
        self.unhealthy = unhealthy
    }
}

/// Per-request overrides read from the `x-sim-fault` header, e.g.
/// `x-sim-fault: fail-percent=100` or `x-sim-fault: ttft-ms=2000, itl-ms=50, output-tokens=50, close-after=3`.
struct RequestOverrides: Equatable {
    var failPercent: Int?
    var closeAfterTokens: Int?
    var errorAfterTokens: Int?
    var headDelay: Duration?
    var timeToFirstToken: Duration?
    var interTokenLatency: Duration?
    var outputTokens: Int?

    static let headerName = "x-sim-fault"

    /// Parses the header; unknown or malformed entries are reported so a typo in a test fails loudly.
    static func parse(_ header: String) -> Result<RequestOverrides, SimulatorError> {
        var overrides = RequestOverrides()
        for entry in header.split(separator: ",") {
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingSpaces() }
            guard parts.count == 2, let number = Int(parts[1]), number >= 0 else {
                return .failure(.badRequest("x-sim-fault entry '\(entry.trimmingSpaces())' must be name=non-negative-integer"))
            }
            switch parts[0] {
            case "fail-percent": overrides.failPercent = number
            case "close-after": overrides.closeAfterTokens = number
            case "error-after": overrides.errorAfterTokens = number
            case "head-delay-ms": overrides.headDelay = .milliseconds(number)
            case "ttft-ms": overrides.timeToFirstToken = .milliseconds(number)
            case "itl-ms": overrides.interTokenLatency = .milliseconds(number)
            case "output-tokens": overrides.outputTokens = number
            default:
                return .failure(.badRequest("x-sim-fault: unknown fault '\(parts[0])' (fail-percent, close-after, error-after, head-delay-ms, ttft-ms, itl-ms, output-tokens)"))
            }
        }
        return .success(overrides)
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
