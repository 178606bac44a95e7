import Foundation
import Testing
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
        try await explainingFailures(of: process, config: path) {
            try await body(GatewayProcess(config: path, store: store, port: ports[0], adminPort: ports[1], simulatorPort: simPort))
        }
    } catch {
        await simulator.shutdown()
        throw error
    }
    await simulator.shutdown()
}

/// Starts the built `warden gateway` with a deployment file and vLLM's key in its environment, as the unit does.
/// Its standard error goes to `<config>.stderr`, for `explainingFailures`.
func startGatewayProcess(config: String, upstreamKey: String) throws -> Process {
    let process = Process()
    process.executableURL = BuiltProduct.directory.appendingPathComponent("warden")
    process.arguments = ["gateway", "--config", config]
    process.environment = ["VLLM_API_KEY": upstreamKey, "PATH": "/usr/bin:/bin"]
    process.standardOutput = FileHandle.nullDevice
    FileManager.default.createFile(atPath: config + ".stderr", contents: nil)
    process.standardError = FileHandle(forWritingAtPath: config + ".stderr")
    try process.run()
    return process
}

/// Runs `body`; if it throws, records beside the error what became of the gateway process — still running, or how
/// it ended and the last of its standard error — so that a refused connection on a loaded CI host says whether the
/// gateway died, and of what.
func explainingFailures<T>(of process: Process, config: String, _ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch {
        let state = process.isRunning
            ? "still running"
            : "ended (\(process.terminationReason == .uncaughtSignal ? "signal" : "exit status") \(process.terminationStatus))"
        let log = (try? String(contentsOfFile: config + ".stderr", encoding: .utf8)) ?? ""
        Issue.record("\(error); the gateway process is \(state); its standard error ends:\n\(log.suffix(4_000))")
        throw error
    }
}
