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
    let gateway: LaunchedGateway
    do {
        gateway = try await launchGateway(in: scratch, upstreamKey: "upstream-key") { port, adminPort in
            """
            vllm: {model: /models/qwen, served_model_name: qwen, port: \(simPort)}
            gateway:
              listen: 127.0.0.1:\(port)
              admin_listen: 127.0.0.1:\(adminPort)
              key_store: \(store)
            """
        }
    } catch {
        await simulator.shutdown()
        throw error
    }
    let process = gateway.process
    defer {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
    _ = try await eventually(timeout: .seconds(10)) { (try? request(port: gateway.port, "GET", "/health").status) == 200 }
    do {
        try await explainingFailures(of: process, config: gateway.config) {
            try await body(GatewayProcess(config: gateway.config, store: store, port: gateway.port, adminPort: gateway.adminPort, simulatorPort: simPort))
        }
    } catch {
        await simulator.shutdown()
        throw error
    }
    await simulator.shutdown()
}

/// A `warden gateway` process that said `READY=1` on its `$NOTIFY_SOCKET`, as a `Type=notify` unit's does.
struct LaunchedGateway {
    let process: Process
    let config: String
    let port: Int
    let adminPort: Int
    let notifications: NotifySocket
}

struct GatewayDidNotStart: Error, CustomStringConvertible {
    let description: String
}

/// Writes the deployment file `deployment(port, adminPort)` renders as `name`, starts the built `warden gateway` on it
/// with `$NOTIFY_SOCKET` set, and returns once the process says `READY=1`: readiness comes from this process, never
/// from a port probe that another test's server could answer. Ports are chosen here; when another test took one in
/// the moment between, the gateway exits naming the address, and is started again on fresh ports.
func launchGateway(in scratch: ScratchDirectory, upstreamKey: String, name: String = "warden.yaml", environment: [String: String] = [:],
                   deployment: (_ port: Int, _ adminPort: Int) -> String) async throws -> LaunchedGateway {
    var log = ""
    for attempt in 1...3 {
        let ports = try freePorts(2)
        let config = try scratch.write(name, deployment(ports[0], ports[1]))
        // Abstract: a path under a long $TMPDIR could outgrow sun_path's 108 bytes.
        let notifications = try NotifySocket(path: "@warden-test-\(UUID().uuidString)")
        let process = try startGatewayProcess(config: config, upstreamKey: upstreamKey, notifySocket: notifications.path, environment: environment)
        _ = try await eventually(timeout: .seconds(15)) { notifications.received("READY=1") || !process.isRunning }
        if process.isRunning, notifications.received("READY=1") {
            return LaunchedGateway(process: process, config: config, port: ports[0], adminPort: ports[1], notifications: notifications)
        }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        log = (try? String(contentsOfFile: config + ".stderr", encoding: .utf8)) ?? ""
        guard log.contains("cannot listen on") else { break }
    }
    throw GatewayDidNotStart(description: "warden gateway did not say READY=1; its standard error ends:\n\(log.suffix(4_000))")
}

/// Starts the built `warden gateway` with a deployment file, vLLM's key and `$NOTIFY_SOCKET` in its environment, as
/// the unit does. Its standard error goes to `<config>.stderr`, for `explainingFailures`.
func startGatewayProcess(config: String, upstreamKey: String, notifySocket: String, environment: [String: String] = [:]) throws -> Process {
    let process = Process()
    process.executableURL = BuiltProduct.directory.appendingPathComponent("warden")
    process.arguments = ["gateway", "--config", config]
    process.environment = ["VLLM_API_KEY": upstreamKey, "PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": notifySocket].merging(environment) { $1 }
    process.standardOutput = FileHandle.nullDevice
    _ = FileManager.default.createFile(atPath: config + ".stderr", contents: nil)
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
