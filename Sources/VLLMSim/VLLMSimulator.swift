import Logging
import NIOConcurrencyHelpers
import NIOCore
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
    private let channels = NIOLockedValueBox(Channels())
    private let logger: Logger

    private struct Channels {
        var server: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
    }

    public init(configuration: SimulatorConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger = Logger(label: "vllm-sim")) {
        self.configuration = configuration
        self.core = SimulatorCore(configuration: configuration, startedAt: currentEpochSeconds())
        self.group = group
        self.logger = logger
    }

    /// Binds and starts serving; returns the bound port (useful with port 0).
    @discardableResult
    public func start(host: String, port: Int) async throws -> Int {
        let core = self.core
        let channels = self.channels
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let id = ObjectIdentifier(channel)
                channels.withLockedValue { $0.connections[id] = channel }
                channel.closeFuture.whenComplete { _ in _ = channels.withLockedValue { $0.connections.removeValue(forKey: id) } }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(SimulatorHTTPHandler(core: core))
                }
            }
        let server = try await bootstrap.bind(host: host, port: port).get()
        channels.withLockedValue { $0.server = server }
        let boundPort = server.localAddress?.port ?? port
        logger.info("vllm-sim serving", metadata: ["address": "\(host):\(boundPort)", "model": "\(configuration.servedModelName)"])
        return boundPort
    }

    /// Statistics as `GET /sim/stats` reports them, for in-process tests.
    public var statsJSON: String { SimulatorReports.stats(core.state.snapshot()) }

    /// Requests admitted or queued and not yet finished.
    public var inFlight: Int { core.state.inFlight }

    /// Stops accepting, refuses new generation requests, lets in-flight ones run for up to `shutdownTimeout`,
    /// then closes every connection (counted as aborts), as vLLM ≥ 0.18 does on SIGTERM.
    public func shutdown() async {
        core.draining.store(true, ordering: .relaxed)
        let server = channels.withLockedValue { $0.server }
        try? await server?.close()
        let deadline = ContinuousClock.now + configuration.shutdownTimeout
        while core.state.inFlight > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let open = channels.withLockedValue { Array($0.connections.values) }
        for channel in open { try? await channel.close() }
    }

    /// Runs until graceful shutdown (SIGTERM/SIGINT in a `ServiceGroup`), then shuts down as ``shutdown()`` does.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }
}
