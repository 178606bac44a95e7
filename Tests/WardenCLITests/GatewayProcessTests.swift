import Foundation
import Testing
import VLLMSim
@testable import WardenGateway
import WardenTestSupport

/// The real `warden gateway` process: signals as systemd sends them.
@Suite("warden gateway (the real binary): SIGHUP reloads, SIGTERM drains and exits 0")
struct GatewayProcessTests {
    @Test("SIGHUP applies a changed allow-list without dropping a stream; SIGTERM lets the stream finish and exits 0")
    func signals() async throws {
        let simulator = VLLMSimulator(configuration: SimulatorConfiguration(servedModelName: "qwen", apiKeys: ["upstream-key"],
                                                                          interTokenLatency: .milliseconds(30), outputTokens: 30))
        let simPort = try await simulator.start(host: "127.0.0.1", port: 0)
        defer { Task { await simulator.shutdown() } }
        let scratch = try ScratchDirectory()
        let store = scratch.url.appendingPathComponent("keys.sqlite").path
        let (token, _) = try KeyStore(path: store, create: true).create(name: "cli")
        func config(_ endpoints: [String], port: Int, adminPort: Int) -> String {
            """
            vllm: {model: /models/qwen, served_model_name: qwen}
            gateway:
              listen: 127.0.0.1:\(port)
              admin_listen: 127.0.0.1:\(adminPort)
              upstream: http://127.0.0.1:\(simPort)
              key_store: \(store)
              drain_timeout: 10s
              bans: {max_failures: 2, ban_time: 1h, ignore_networks: []}
              allowed_endpoints: [\(endpoints.map { "\"\($0)\"" }.joined(separator: ", "))]
            """
        }
        let gateway = try await launchGateway(in: scratch, upstreamKey: "upstream-key") {
            config(["GET /v1/models", "POST /v1/completions"], port: $0, adminPort: $1)
        }
        let (process, path, port, adminPort) = (gateway.process, gateway.config, gateway.port, gateway.adminPort)
        defer { if process.isRunning { process.terminate() } }
        let bearer = ["Authorization": "Bearer \(token.text)"]
        #expect(try await eventually(timeout: .seconds(10)) { (try? request(port: port, "GET", "/v1/models", headers: bearer).status) == 200 })
        #expect(try request(port: port, "POST", "/tokenize", json: #"{"prompt":"x"}"#, headers: bearer).status == 404)

        // Two bad keys ban this address; `warden bans` lists and lifts the ban through the admin listener.
        let bad = ["Authorization": "Bearer sk-warden-000000000000-\(String(repeating: "a", count: 64))"]
        for _ in 0..<2 { _ = try request(port: port, "GET", "/v1/models", headers: bad) }
        #expect(try request(port: port, "GET", "/v1/models", headers: bearer).status == 403)
        let listed = try BuiltProduct.run("warden", ["bans", "list", "--config", path])
        #expect(listed.status == 0)
        #expect(listed.stdout.contains("127.0.0.1"))
        let listedJSON = try BuiltProduct.run("warden", ["bans", "list", "--format", "json", "--config", path])
        #expect((try jsonObject(listedJSON.stdout))["address"] as? String == "127.0.0.1", "\(listedJSON.stdout)")
        let lifted = try BuiltProduct.run("warden", ["bans", "unban", "127.0.0.1", "--config", path])
        #expect(lifted.stdout.contains("unbanned 127.0.0.1"))
        #expect(try request(port: port, "GET", "/v1/models", headers: bearer).status == 200)

        let stream = try TestHTTPConnection(port: port)
        stream.post("/v1/completions", json: #"{"prompt":"x","stream":true}"#, headers: bearer)
        _ = try stream.read(through: "data: ")
        _ = try scratch.write("warden.yaml", config(["GET /v1/models", "POST /v1/completions", "POST /tokenize"], port: port, adminPort: adminPort))
        kill(process.processIdentifier, SIGHUP)
        #expect(try await eventually { (try? request(port: port, "POST", "/tokenize", json: #"{"prompt":"x"}"#, headers: bearer).status) == 200 })

        kill(process.processIdentifier, SIGTERM)
        let rest = try stream.readToClose()
        #expect(rest.contains("data: [DONE]"))
        #expect(!rest.contains("shutting_down"))
        #expect(try await eventually(timeout: .seconds(15)) { !process.isRunning })
        #expect(process.terminationStatus == 0)
    }

    @Test("usage and bans survive kill -9 (usage written a second before is kept) and a restart; warden usage reads it")
    func usageSurvivesKill() async throws {
        let simulator = VLLMSimulator(configuration: SimulatorConfiguration(servedModelName: "qwen", apiKeys: ["upstream-key"]))
        let simPort = try await simulator.start(host: "127.0.0.1", port: 0)
        defer { Task { await simulator.shutdown() } }
        let scratch = try ScratchDirectory()
        let store = scratch.url.appendingPathComponent("keys.sqlite").path
        let (token, record) = try KeyStore(path: store, create: true).create(name: "team-a")
        func deployment(port: Int, adminPort: Int) -> String {
            """
            vllm: {model: /models/qwen, served_model_name: qwen}
            gateway:
              listen: 127.0.0.1:\(port)
              admin_listen: 127.0.0.1:\(adminPort)
              upstream: http://127.0.0.1:\(simPort)
              key_store: \(store)
              bans: {max_failures: 2, ban_time: 1h, ignore_networks: []}
            """
        }
        let bearer = ["Authorization": "Bearer \(token.text)"]
        let launched = try await launchGateway(in: scratch, upstreamKey: "upstream-key", deployment: deployment)
        let (first, path, port) = (launched.process, launched.config, launched.port)
        defer { if first.isRunning { first.terminate() } }
        try await explainingFailures(of: first, config: path) {
            #expect(try await eventually(timeout: .seconds(10)) { (try? request(port: port, "GET", "/v1/models", headers: bearer).status) == 200 })
            for _ in 0..<3 {
                #expect(try request(port: port, "POST", "/v1/completions", json: #"{"prompt":"x","max_tokens":4}"#, headers: bearer).status == 200)
            }
            let bad = ["Authorization": "Bearer sk-warden-000000000000-\(String(repeating: "a", count: 64))"]
            for _ in 0..<2 { _ = try request(port: port, "GET", "/v1/models", headers: bad) }
            #expect(try request(port: port, "GET", "/v1/models", headers: bearer).status == 403)
            // The ledger and the bans are written every second: kill only once both are on disk, however late a loaded
            // machine runs that write.
            let reader = try KeyStore(path: store, create: false)
            #expect(try await eventually(timeout: .seconds(10)) {
                let rows = try reader.usage(since: 0, key: record.publicID).filter { $0.0.outcome.isEmpty }
                let bans = try reader.loadBans(now: Int64(Date().timeIntervalSince1970))
                return rows.filter { $0.0.route == "/v1/completions" }.map(\.1.requests) == [3]
                    && rows.reduce(0) { $0 + $1.1.completionTokens } == 12 && !bans.isEmpty
            }, "usage and the ban were persisted before the kill")
        }
        kill(first.processIdentifier, SIGKILL)
        #expect(try await eventually { !first.isRunning })

        let rows = try KeyStore(path: store, create: false).usage(since: 0).filter { $0.0.key == record.publicID }
        #expect(rows.filter { $0.0.outcome.isEmpty && $0.0.route == "/v1/completions" }.map(\.1.requests) == [3])
        #expect(rows.filter { $0.0.outcome.isEmpty }.reduce(0) { $0 + $1.1.completionTokens } == 12)

        // Restarted on the same key store (and on fresh ports, should another test have taken the first ones).
        let restarted = try await launchGateway(in: scratch, upstreamKey: "upstream-key", name: "warden-restarted.yaml", deployment: deployment)
        let second = restarted.process
        defer { if second.isRunning { second.terminate() } }
        #expect(try request(port: restarted.port, "GET", "/v1/models", headers: bearer).status == 403, "the ban outlived the process")
        let report = try BuiltProduct.run("warden", ["usage", "--config", path, "--format", "csv"])
        #expect(report.stdout.contains("\(record.publicID),team-a,4,0,"), "3 completions and /v1/models answered (a ban refuses before any key)")
        kill(second.processIdentifier, SIGTERM)
        #expect(try await eventually(timeout: .seconds(15)) { !second.isRunning })
        #expect(second.terminationStatus == 0)
    }

    @Test("READY=1 only once both listeners accept; SIGHUP and SIGTERM sent the moment it comes: a reload, then STOPPING=1 and a drain with exit 0 (never the default action)")
    func signalsRightAfterReady() async throws {
        try await withGatewayProcess { _ in }  // warms the binary's page cache so starts are quick
        let scratch = try ScratchDirectory()
        let store = scratch.url.appendingPathComponent("keys.sqlite").path
        _ = try KeyStore(path: store, create: true)
        for round in 0..<3 {
            let gateway = try await launchGateway(in: scratch, upstreamKey: "upstream-key", name: "warden-\(round).yaml") { port, adminPort in
                """
                vllm: {model: /models/qwen, served_model_name: qwen}
                gateway: {listen: "127.0.0.1:\(port)", admin_listen: "127.0.0.1:\(adminPort)", key_store: \(store)}
                """
            }
            let process = gateway.process
            defer { if process.isRunning { process.terminate() } }
            kill(process.processIdentifier, SIGHUP)
            // No retries: systemd reports the unit started at READY=1, and clients may connect from then on.
            #expect(try request(port: gateway.adminPort, "GET", "/healthz").status == 200)
            #expect(try request(port: gateway.port, "GET", "/v1/models").status == 401)
            try await Task.sleep(for: .milliseconds(200))
            #expect(process.isRunning, "SIGHUP reloads; it must not terminate")
            #expect(try await eventually { gateway.notifications.received("STATUS=reloaded: 0 keys, 4 endpoints") })
            #expect(!gateway.notifications.received("STOPPING=1"))
            kill(process.processIdentifier, SIGTERM)
            #expect(try await eventually(timeout: .seconds(15)) { !process.isRunning })
            #expect(process.terminationReason == .exit && process.terminationStatus == 0)
            #expect(gateway.notifications.received("STOPPING=1"))
        }
    }

    @Test("with WatchdogSec= set (WATCHDOG_USEC), WATCHDOG=1 every quarter of it, through a drain until the process ends; without it, never")
    func watchdogPings() async throws {
        let simulator = VLLMSimulator(configuration: SimulatorConfiguration(servedModelName: "qwen", apiKeys: ["upstream-key"],
                                                                          interTokenLatency: .milliseconds(50), outputTokens: 30))
        let simPort = try await simulator.start(host: "127.0.0.1", port: 0)
        defer { Task { await simulator.shutdown() } }
        let scratch = try ScratchDirectory()
        let store = scratch.url.appendingPathComponent("keys.sqlite").path
        let (token, _) = try KeyStore(path: store, create: true).create(name: "watchdog")
        for (round, watchdog) in [(0, true), (1, false)] {
            let gateway = try await launchGateway(in: scratch, upstreamKey: "upstream-key", name: "warden-\(round).yaml",
                                                  environment: watchdog ? ["WATCHDOG_USEC": "400000"] : [:]) { port, adminPort in
                """
                vllm: {model: /models/qwen, served_model_name: qwen}
                gateway: {listen: "127.0.0.1:\(port)", admin_listen: "127.0.0.1:\(adminPort)", key_store: \(store),
                          upstream: "http://127.0.0.1:\(simPort)", drain_timeout: 10s}
                """
            }
            defer { if gateway.process.isRunning { gateway.process.terminate() } }
            let pings = { gateway.notifications.receive().filter { $0 == "WATCHDOG=1" }.count }
            if watchdog {
                #expect(try await eventually(timeout: .seconds(10)) { pings() >= 3 }, "every 100 ms")
            } else {
                try await Task.sleep(for: .milliseconds(600))
                #expect(pings() == 0)
            }
            // A 1.5 s stream in flight when SIGTERM comes: the drain waits for it, and the pings must go on meanwhile
            // (systemd re-arms its timer on any ping, so the last one must not be the drain's first moment).
            let stream = try TestHTTPConnection(port: gateway.port)
            stream.post("/v1/completions", json: #"{"prompt":"x","stream":true}"#, headers: ["Authorization": "Bearer \(token.text)"])
            _ = try stream.read(through: "data: ")
            kill(gateway.process.processIdentifier, SIGTERM)
            #expect(try stream.readToClose().contains("data: [DONE]"))
            #expect(try await eventually(timeout: .seconds(15)) { !gateway.process.isRunning })
            let messages = gateway.notifications.receive()
            let stopping = try #require(messages.firstIndex { $0.hasPrefix("STOPPING=1") })
            let duringDrain = messages[stopping...].filter { $0 == "WATCHDOG=1" }.count
            #expect(watchdog ? duringDrain >= 5 : duringDrain == 0, "\(duringDrain) pings while draining")
        }
    }
}
