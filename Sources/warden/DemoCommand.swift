import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Logging
import ServiceLifecycle
import VLLMSim
import WardenConfig
import WardenGateway

/// `warden demo`: vllm-sim and the gateway on loopback with a fresh key, and snippets that work as printed.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Start vllm-sim and the gateway on loopback with a demo key; Ctrl-C stops both."
    )
    @Option(help: "Gateway port (0 picks a free one).") var port = 8080
    @Option(help: "Admin port (0 picks a free one).") var adminPort = 9091

    func validate() throws {
        for (flag, port) in [("--port", port), ("--admin-port", adminPort)] where !(0...65_535).contains(port) {
            throw ValidationError("\(flag) \(port) is not a port: give 1 to 65535, or 0 for a free one")
        }
    }

    func run() async throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("warden-demo-\(getpid())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }

        let model = "qwen-demo"
        let upstreamKey = UUID().uuidString
        var logger = Logger(label: "warden-demo")
        logger.logLevel = .warning
        let simulator = VLLMSimulator(configuration: SimulatorConfiguration(
            servedModelName: model, apiKeys: [upstreamKey], timeToFirstToken: .milliseconds(150),
            interTokenLatency: .milliseconds(25), outputTokens: 24), logger: logger)
        let simPort = try await simulator.start(host: "127.0.0.1", port: 0)

        let keyStore = scratch.appendingPathComponent("keys.sqlite").path
        let (token, _) = try KeyStore(path: keyStore, create: true).create(name: "demo")
        var deployment = Deployment(vllm: .init(model: "/models/\(model)", servedModelName: model))
        deployment.gateway.listen = "127.0.0.1:\(max(port, 1))"
        deployment.gateway.adminListen = "127.0.0.1:\(max(adminPort, 1))"
        deployment.gateway.upstream = "http://127.0.0.1:\(simPort)"
        deployment.gateway.keyStore = keyStore
        deployment.gateway.drainTimeout = 5
        var configuration = try GatewayConfiguration(deployment: deployment, deploymentPath: nil, upstreamKey: upstreamKey)
        configuration.listenPort = port
        configuration.adminPort = adminPort
        let gateway = try GatewayServer(configuration: configuration, logger: logger)
        let (gatewayPort, boundAdminPort) = try await gateway.start()

        // Written unbuffered, like the access log that follows, so the two never reorder.
        StandardOutputSink().write(Array("""
        vLLM Warden demo: vllm-sim (model \(model)) on 127.0.0.1:\(simPort), behind the gateway on 127.0.0.1:\(gatewayPort).
        Demo key: \(token.text)

        curl -s http://127.0.0.1:\(gatewayPort)/v1/chat/completions -H 'Authorization: Bearer \(token.text)' \\
          -H 'Content-Type: application/json' -d '{"model":"\(model)","messages":[{"role":"user","content":"Hello"}]}'

        curl -sN http://127.0.0.1:\(gatewayPort)/v1/chat/completions -H 'Authorization: Bearer \(token.text)' \\
          -H 'Content-Type: application/json' -d '{"model":"\(model)","stream":true,"messages":[{"role":"user","content":"Hello"}]}'

        curl -si http://127.0.0.1:\(gatewayPort)/tokenize -H 'Authorization: Bearer \(token.text)' -d '{"prompt":"hi"}'   # 404: not on the allow-list

        \(Self.pythonLine(gatewayPort: gatewayPort, key: token.text, model: model))

        Metrics: curl -s http://127.0.0.1:\(boundAdminPort)/metrics    Readiness: curl -s http://127.0.0.1:\(boundAdminPort)/readyz
        Access log lines follow below. Ctrl-C stops the demo.

        """.utf8))
        // A service group stops its services last to first: the gateway drains its streams while vllm-sim still serves them.
        var group = ServiceGroupConfiguration(services: [simulator, gateway], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = .seconds(15)
        try await ServiceGroup(configuration: group).run()
    }

    /// The openai SDK snippet: with the test venv when `scripts/test` made one here, else through a throwaway venv, so
    /// it works as printed on a fresh Debian (where `pip install` outside a venv is refused).
    static func pythonLine(gatewayPort: Int, key: String, model: String) -> String {
        let script = "from openai import OpenAI; c = OpenAI(base_url=\"http://127.0.0.1:\(gatewayPort)/v1\", api_key=\"\(key)\"); print(c.chat.completions.create(model=\"\(model)\", messages=[{\"role\": \"user\", \"content\": \"Hello\"}]).choices[0].message.content)"
        if FileManager.default.isExecutableFile(atPath: ".venv/bin/python") {
            return "# With the official openai SDK (the venv scripts/test made):\n.venv/bin/python -c '\(script)'"
        }
        return """
            # With the official openai SDK, in a throwaway venv (Debian: `apt install python3-venv` once):
            python3 -m venv /tmp/warden-demo-venv && /tmp/warden-demo-venv/bin/pip install -q openai && /tmp/warden-demo-venv/bin/python -c '\(script)'
            """
    }
}
