import Logging
import NIOConcurrencyHelpers
import NIOCore
import WardenNIOSupport
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// A simulated vLLM OpenAI-compatible server on SwiftNIO: start it on port 0 in a test, or run it as a `Service`.
///
/// ```swift
/// let simulator = VLLMSimulator(configuration: .init(apiKeys: ["secret"]))
/// let port = try await simulator.start(host: "127.0.0.1", port: 0)
/// defer { Task { await simulator.shutdown() } }
/// ```
public final class VLLMSimulator: Service, Sendable {
    public let configuration: SimulatorConfiguration
    let core: SimulatorCore
    private let group: any EventLoopGroup
    private let server = NIOLockedValueBox<(any Channel)?>(nil)
    private let connections = ConnectionRegistry()
    private let logger: Logger
    private let lastResponse = NIOLockedValueBox<[UInt8]>([])
    private let recordsResponses: Bool

    public init(configuration: SimulatorConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger = Logger(label: "vllm-sim"), recordsResponses: Bool = false) {
        self.configuration = configuration
        self.recordsResponses = recordsResponses
        self.core = SimulatorCore(configuration: configuration, startedAt: epochSeconds())
        self.group = group
        self.logger = logger
    }

    /// Binds and starts serving; returns the bound port (useful with port 0).
    @discardableResult
    public func start(host: String, port: Int) async throws -> Int {
        let core = self.core
        let recorder = recordsResponses ? lastResponse : nil
        let bootstrap = connections.httpServerBootstrap(group: group) { pipeline in
            try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
            if let recorder { try pipeline.addHandler(ResponseRecorder(store: recorder)) }
            try pipeline.addHandler(SimulatorHTTPHandler(core: core))
        }
        let listener = try await bootstrap.bind(host: host, port: port).get()
        server.withLockedValue { $0 = listener }
        let boundPort = listener.localAddress?.port ?? port
        logger.info("vllm-sim serving", metadata: ["address": "\(host):\(boundPort)", "model": "\(configuration.servedModelName)"])
        return boundPort
    }

    /// Statistics as `GET /sim/stats` reports them, for in-process tests.
    public var statsJSON: String { SimulatorReports.stats(core.state.snapshot()) }

    /// The body bytes of the last complete response, as written (only with `recordsResponses`).
    public var lastResponseBody: [UInt8] { lastResponse.withLockedValue { $0 } }

    /// Zeroes the counters of `/sim/stats` (what `POST /sim/reset` does); stored responses are kept.
    public func resetStats() throws { core.state.reset() }

    /// Requests admitted or queued and not yet finished.
    public var inFlight: Int { core.state.inFlight }

    /// Stops accepting, refuses new generation requests, lets in-flight ones run for up to `shutdownTimeout`,
    /// then closes every connection (counted as aborts), as vLLM ≥ 0.18 does on SIGTERM.
    public func shutdown() async {
        core.draining.store(true, ordering: .relaxed)
        try? await server.withLockedValue { $0 }?.close()
        let deadline = ContinuousClock.now + configuration.shutdownTimeout
        while core.state.inFlight > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        await connections.closeAll()
    }

    /// Runs until graceful shutdown (SIGTERM/SIGINT in a `ServiceGroup`), then shuts down as ``shutdown()`` does.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }
}
