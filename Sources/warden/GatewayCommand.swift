import ArgumentParser
import Logging
import ServiceLifecycle
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
        let deployment = try options.load()
        let logger = Logger(label: "warden-gateway")
        for warning in deployment.warnings() { logger.warning("\(warning)") }
        let server: GatewayServer
        do {
            let configuration = try GatewayConfiguration(deployment: deployment, deploymentPath: options.path,
                                                         upstreamKey: ProcessEnvironment.value("VLLM_API_KEY"))
            server = try GatewayServer(configuration: configuration, logger: logger)
            try await server.start()
        } catch let error as GatewaySetupError {
            printError("gateway: \(error)")
            throw ExitCode(WardenExit.usage)
        }
        var groupConfiguration = ServiceGroupConfiguration(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(deployment.gateway.drainTimeout + 10)
        try await ServiceGroup(configuration: groupConfiguration).run()
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
