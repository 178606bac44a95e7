import ArgumentParser
import Logging
import ServiceLifecycle
import VLLMSim

/// `vllm-sim`: a simulated vLLM OpenAI-compatible server for tests, benchmarks and `warden demo`.
@main
struct VLLMSimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vllm-sim",
        abstract: "Serve a simulated vLLM OpenAI-compatible API (no GPU, no model).",
        discussion: """
        Per-request faults: header `x-sim-fault: fail-percent=N, close-after=N, error-after=N, head-delay-ms=N, \
        ttft-ms=N, itl-ms=N, output-tokens=N`. Statistics: GET /sim/stats; POST /sim/reset; POST /sim/faults.
        """
    )

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one and prints it).") var port = 8000
    @Option(name: .customLong("served-model-name"), help: "Model name clients use.") var servedModelName = "sim-model"
    @Option(name: .customLong("api-key"), help: "Require this key on /v1, /v2 and /inference, as vLLM does (repeatable; else $VLLM_API_KEY).")
    var apiKeys: [String] = []
    @Option(name: .customLong("max-model-len"), help: "Context length.") var maxModelLen = 32_768
    @Option(name: .customLong("ttft-ms"), help: "Prefill time before the first token.") var ttftMilliseconds = 0
    @Option(name: .customLong("itl-ms"), help: "Time between tokens.") var itlMilliseconds = 0
    @Option(name: .customLong("output-tokens"), help: "Tokens generated before a natural stop.") var outputTokens = 16
    @Option(name: .customLong("max-num-seqs"), help: "Sequences generated at once; more requests wait.") var maxNumSeqs: Int?
    @Option(name: .customLong("fail-percent"), help: "Answer this share of generation requests with 500.") var failPercent = 0
    @Option(name: .customLong("close-after-tokens"), help: "Drop the connection after this many tokens.") var closeAfterTokens: Int?
    @Option(name: .customLong("error-after-tokens"), help: "Send an in-stream error after this many tokens.") var errorAfterTokens: Int?
    @Option(name: .customLong("head-delay-ms"), help: "Hold back every response head this long.") var headDelayMilliseconds = 0
    @Flag(help: "Answer /health with 503, as a dead engine does.") var unhealthy = false
    @Flag(name: .customLong("legacy-errors"), help: "Use the error shape of vLLM <= 0.9.") var legacyErrors = false
    @Option(name: .customLong("shutdown-timeout"), help: "Seconds in-flight requests may finish after SIGTERM.") var shutdownTimeout = 0
    @Flag(name: .customLong("no-keep-alive"), help: "Close every connection after its response (VLLM_HTTP_TIMEOUT_KEEP_ALIVE=0).") var noKeepAlive = false

    func validate() throws {
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
        guard (0...100).contains(failPercent) else { throw ValidationError("--fail-percent must be from 0 to 100") }
        guard outputTokens >= 1 else { throw ValidationError("--output-tokens must be at least 1") }
        guard maxNumSeqs.map({ $0 >= 1 }) ?? true else { throw ValidationError("--max-num-seqs must be at least 1") }
        guard ttftMilliseconds >= 0, itlMilliseconds >= 0, headDelayMilliseconds >= 0, shutdownTimeout >= 0 else {
            throw ValidationError("times must not be negative")
        }
    }

    func run() async throws {
        var keys = apiKeys
        if keys.isEmpty, let fromEnvironment = ProcessEnvironment.value("VLLM_API_KEY"), !fromEnvironment.isEmpty {
            keys = [fromEnvironment]
        }
        let faults = SimulatorFaults(failPercent: failPercent, closeAfterTokens: closeAfterTokens, errorAfterTokens: errorAfterTokens,
                                     headDelay: .milliseconds(headDelayMilliseconds), unhealthy: unhealthy)
        let configuration = SimulatorConfiguration(
            servedModelName: servedModelName, apiKeys: keys, maxModelLen: maxModelLen,
            timeToFirstToken: .milliseconds(ttftMilliseconds), interTokenLatency: .milliseconds(itlMilliseconds),
            outputTokens: outputTokens, maxNumSeqs: maxNumSeqs, faults: faults, legacyErrorShape: legacyErrors,
            shutdownTimeout: .seconds(shutdownTimeout), keepAlive: !noKeepAlive)
        let logger = Logger(label: "vllm-sim")
        let simulator = VLLMSimulator(configuration: configuration, logger: logger)
        let bound = try await simulator.start(host: host, port: port)
        print("vllm-sim listening on \(host.contains(":") ? "[\(host)]" : host):\(bound)")
        fflush(nil)  // scripts read the port from this line, often through a pipe or file: flush it now
        let group = ServiceGroup(services: [simulator], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}

enum ProcessEnvironment {
    static func value(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}

#if canImport(Glibc)
import Glibc
#endif
