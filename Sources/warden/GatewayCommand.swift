import ArgumentParser
import FoundationEssentials
import Logging
import ServiceLifecycle
import UnixSignals
import WardenConfig
import WardenGateway

/// `warden gateway`: the authenticating, allow-listing, streaming reverse proxy in front of vLLM.
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Run the gateway in front of vLLM (SIGTERM drains, SIGHUP reloads keys and the allow-list)."
    )
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        // Trapped first: a stop sent the moment the process is up still drains, never kills.
        let stopSignals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let deployment = try options.load()
        let logger = Logger(label: "warden-gateway")
        for warning in deployment.warnings() { logger.warning("\(warning)") }
        let server: GatewayServer
        do {
            let configuration = try GatewayConfiguration(deployment: deployment, deploymentPath: options.path,
                                                         upstreamKey: gatewayUpstreamKey(environment: ProcessEnvironment.value, readFile: ProcessEnvironment.text))
            server = try GatewayServer(configuration: configuration, logger: logger, notifier: .fromEnvironment())
            try await server.start()
        } catch let error as GatewaySetupError {
            printError("gateway: \(error)")
            throw ExitCode(WardenExit.usage)
        }
        var groupConfiguration = ServiceGroupConfiguration(services: [server], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(deployment.gateway.drainTimeout + 10)
        let group = ServiceGroup(configuration: groupConfiguration)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            tasks.addTask {
                for await _ in stopSignals {
                    await group.triggerGracefulShutdown()
                    return
                }
            }
            try await tasks.next()
            tasks.cancelAll()
        }
    }
}

enum ProcessEnvironment {
    static func value(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// A small file's text (a credential), nil when it cannot be read.
    static func text(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }
}

#if canImport(Glibc)
import Glibc
#endif
