import Foundation
import VLLMSim
import WardenGateway
import WardenTestSupport

/// A running `warden gateway` process (the built binary) in front of an in-process vllm-sim, with an empty key
/// store and a deployment file; stopped afterwards.
struct GatewayProcess {
    let config: String
    let store: String
    let port: Int
    let adminPort: Int
    let simulatorPort: Int
}

func withGatewayProcess(_ body: (GatewayProcess) async throws -> Void) async throws {
    let simulator = VLLMSimulator(configuration: SimulatorConfiguration(servedModelName: "qwen", apiKeys: ["upstream-key"]))
    let simPort = try await simulator.start(host: "127.0.0.1", port: 0)
    let scratch = try ScratchDirectory()
    let store = scratch.url.appendingPathComponent("keys.sqlite").path
    _ = try KeyStore(path: store, create: true)
    let ports = try freePorts(2)
    let path = try scratch.write("warden.yaml", """
        vllm: {model: /models/qwen, served_model_name: qwen, port: \(simPort)}
        gateway:
          listen: 127.0.0.1:\(ports[0])
          admin_listen: 127.0.0.1:\(ports[1])
          key_store: \(store)
        """)
    let process = try startGatewayProcess(config: path, upstreamKey: "upstream-key")
    defer {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
    _ = try await eventually(timeout: .seconds(10)) { (try? request(port: ports[0], "GET", "/health").status) == 200 }
    do {
        try await body(GatewayProcess(config: path, store: store, port: ports[0], adminPort: ports[1], simulatorPort: simPort))
    } catch {
        await simulator.shutdown()
        throw error
    }
    await simulator.shutdown()
}

/// Starts the built `warden gateway` with a deployment file and vLLM's key in its environment, as the unit does.
func startGatewayProcess(config: String, upstreamKey: String) throws -> Process {
    let process = Process()
    process.executableURL = BuiltProduct.directory.appendingPathComponent("warden")
    process.arguments = ["gateway", "--config", config]
    process.environment = ["VLLM_API_KEY": upstreamKey, "PATH": "/usr/bin:/bin"]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    return process
}
