import Foundation
import Testing
import WardenGateway
import WardenTestSupport

/// The built binaries as a service runs them: under an account without privileges. Run as root (as CI is),
/// the test drops to `nobody` with `setpriv`; a root-only call (`SO_DEBUG` set where `TCP_NODELAY` was meant)
/// once reset every connection there while every root-run test passed.
@Suite("warden gateway and vllm-sim (the real binaries) serve requests as an unprivileged user")
struct UnprivilegedProcessTests {
    static let nobody = BuiltProduct.nobody

    /// Starts a copied binary (the build folder may not be reachable by `nobody`) as an unprivileged user.
    /// Its standard output and error go to `log` in the scratch directory (read for its port, shown on failure).
    func launch(_ binary: String, _ arguments: [String], in scratch: ScratchDirectory, log: String, notifySocket: String? = nil) throws -> Process {
        let copy = try BuiltProduct.copy(binary, into: scratch)
        let output = scratch.url.appendingPathComponent(log)
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let process = Process()
        if getuid() == 0 {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid=\(Self.nobody)", "--regid=\(Self.nobody)", "--clear-groups", "--", copy] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: copy)
            process.arguments = arguments
        }
        process.environment = ["VLLM_API_KEY": "upstream-key", "PATH": "/usr/bin:/bin"].merging(notifySocket.map { ["NOTIFY_SOCKET": $0] } ?? [:]) { $1 }
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    func text(_ log: String, in scratch: ScratchDirectory) -> String {
        (try? String(contentsOf: scratch.url.appendingPathComponent(log), encoding: .utf8)) ?? ""
    }

    /// The real user id of a running process, from `/proc/<pid>/status`.
    func realUID(of process: Process) throws -> uid_t? {
        let status = try String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)
        let line = status.split(separator: "\n").first { $0.hasPrefix("Uid:") }
        return line?.split(whereSeparator: \.isWhitespace).dropFirst().first.flatMap { uid_t($0) }
    }

    @Test("chat, a stream and readiness through the gateway to vllm-sim, both running without root")
    func requestsGoThrough() async throws {
        let scratch = try ScratchDirectory()
        let store = scratch.url.appendingPathComponent("keys.sqlite").path
        let (token, _) = try KeyStore(path: store, create: true).create(name: "unprivileged")
        if getuid() == 0 {
            for name in try FileManager.default.contentsOfDirectory(atPath: scratch.url.path) + [""] {
                #expect(chown(scratch.url.appendingPathComponent(name).path, Self.nobody, gid_t(Self.nobody)) == 0)
            }
        }
        // vllm-sim binds port 0 and says which; the gateway's ports are chosen here, and chosen again if another
        // test took one in the moment between (the process then exits at once).
        let simulator = try launch("vllm-sim", ["--port", "0", "--served-model-name", "qwen"], in: scratch, log: "sim.log")
        defer { simulator.terminate(); simulator.waitUntilExit() }
        #expect(try await eventually { text("sim.log", in: scratch).contains("listening on") })
        let announced = text("sim.log", in: scratch).split(separator: "\n").first { $0.contains("listening on") }
        let simPort = try #require(announced?.split(separator: ":").last.flatMap { Int($0.filter(\.isNumber)) })
        var started: (process: Process, port: Int, admin: Int)?
        for attempt in 1...3 where started == nil {
            let ports = try freePorts(2)
            let config = try scratch.write("warden-\(attempt).yaml", """
                vllm: {model: /models/qwen, served_model_name: qwen}
                gateway:
                  listen: 127.0.0.1:\(ports[0])
                  admin_listen: 127.0.0.1:\(ports[1])
                  upstream: http://127.0.0.1:\(simPort)
                  key_store: \(store)
                """)
            // Ready when it says so on its $NOTIFY_SOCKET (abstract, so `nobody` may send to it), not when some
            // server answers on the port.
            let notifications = try NotifySocket(path: "@warden-test-\(UUID().uuidString)")
            let gateway = try launch("warden", ["gateway", "--config", config], in: scratch, log: "gateway-\(attempt).log", notifySocket: notifications.path)
            if try await eventually(timeout: .seconds(10), { !gateway.isRunning || notifications.received("READY=1") }), gateway.isRunning {
                started = (gateway, ports[0], ports[1])
            } else {
                gateway.terminate()
                gateway.waitUntilExit()
                print("gateway attempt \(attempt) did not become ready:\n\(text("gateway-\(attempt).log", in: scratch))")
            }
        }
        let (gateway, port, adminPort) = try #require(started)
        defer { gateway.terminate(); gateway.waitUntilExit() }
        // READY=1 says the listeners accept; readiness also needs a health probe of vLLM, which a loaded host may delay.
        #expect(try await eventually { (try? request(port: adminPort, "GET", "/readyz").status) == 200 })
        for process in [simulator, gateway] { #expect(try realUID(of: process) != 0) }

        let direct = try request(port: simPort, "GET", "/v1/models", headers: ["Authorization": "Bearer upstream-key"])
        #expect(direct.status == 200)
        let bearer = ["Authorization": "Bearer \(token.text)"]
        let chat = try request(port: port, "POST", "/v1/chat/completions",
                               json: #"{"model":"qwen","messages":[{"role":"user","content":"hi"}],"max_tokens":4}"#, headers: bearer)
        #expect(chat.status == 200, "\(chat.body)")
        #expect(chat.body.contains(#""completion_tokens":4"#))
        let stream = try TestHTTPConnection(port: port)
        stream.post("/v1/chat/completions", json: #"{"model":"qwen","messages":[{"role":"user","content":"hi"}],"max_tokens":3,"stream":true}"#,
                    headers: bearer)
        #expect(try stream.read(through: "data: [DONE]").contains("200 OK"))
    }
}
