import Testing
import VLLMSim
import WardenConfig
@testable import WardenAudit

@Suite("warden audit's live probe against vllm-sim")
struct LiveProbeTests {
    static let key = "sk-" + String(repeating: "9f8e7d6c5b4a3210", count: 3)

    /// A fake host whose vLLM process is the in-process simulator listening on every interface at `port`.
    static func host(port: Int) -> FakeAuditHost {
        var host = FakeAuditHost()
        host.process(31, ["/opt/vllm/.venv/bin/vllm", "serve", "/srv/models/sim", "--host", "0.0.0.0", "--port", String(port), "--api-key", key],
                     unit: nil, environment: [:], sockets: [4711])
        host.listening([("0.0.0.0", port, 4711)])
        host.routes = nil
        return host
    }

    @Test("with --host 0.0.0.0 and a key, the routes --api-key leaves open are found over HTTP")
    func openRoutesFound() async throws {
        let simulator = VLLMSimulator(configuration: SimulatorConfiguration(apiKeys: [Self.key]))
        let port = try await simulator.start(host: "0.0.0.0", port: 0)
        defer { Task { await simulator.shutdown() } }
        let report = try Audit.run(host: Self.host(port: port))
        let open = try #require(report.findings.first { $0.id == "exposure.open-routes" })
        #expect(open.severity == .high)
        for route in ["/tokenize", "/pause", "/invocations", "/metrics", "/docs"] {
            #expect(open.evidence.contains { $0.hasPrefix("GET \(route) → ") }, "\(route)")
        }
        let dev = try #require(report.findings.first { $0.id == "exposure.dev-routes" })
        #expect(dev.severity == .critical && dev.evidence.contains { $0.hasPrefix("GET /collective_rpc → 405") })
        #expect(!report.findings.contains { $0.id == "exposure.unauthenticated-api" }, "/v1/models answers 401")
        #expect(report.findings.contains { $0.id == "exposure.listen" } && report.findings.contains { $0.id == "unit.none" })
    }

    @Test("--url probes where it says; a vLLM without a key answers /v1/models")
    func explicitURL() async throws {
        let simulator = VLLMSimulator(configuration: SimulatorConfiguration())
        let port = try await simulator.start(host: "127.0.0.1", port: 0)
        defer { Task { await simulator.shutdown() } }
        var host = Self.host(port: port)
        host.listening([])
        let report = try Audit.run(host: host, url: "http://127.0.0.1:\(port)/")
        #expect(report.findings.contains { $0.id == "exposure.unauthenticated-api" && $0.evidence == ["GET /v1/models → 200 without Authorization"] })
        #expect(report.findings.contains { $0.id == "exposure.open-routes" })
    }

    @Test("nothing listening: the probe reports no routes")
    func refused() throws {
        var host = Self.host(port: 1)
        host.listening([])
        let report = try Audit.run(host: host, url: "http://127.0.0.1:1")
        #expect(!report.findings.contains { $0.id.hasPrefix("exposure.open") || $0.id.hasPrefix("exposure.dev") })
        let unchecked = try #require(report.findings.first { $0.id == "exposure.probe-inconclusive" }, "a probe that never ran is said, not a clean result")
        #expect(unchecked.severity == .medium && unchecked.title.contains("exposure is unchecked"))
    }

    @Test("redirects and errors prove nothing: only 2xx and 405 count as answering without a key")
    func redirectsAreInconclusive() throws {
        var host = Self.host(port: 8000)
        host.routes = ["/v1/models": 401, "/collective_rpc": 302, "/pause": 502, "/tokenize": 405, "/docs": 200]
        let report = try Audit.run(host: host, url: "http://127.0.0.1:8000")
        #expect(!report.findings.contains { $0.id == "exposure.dev-routes" }, "a 302 to a login page is no open /collective_rpc")
        let open = try #require(report.findings.first { $0.id == "exposure.open-routes" })
        #expect(open.evidence.contains("GET /tokenize → 405 (exists; it is a POST route)") && open.evidence.contains("GET /docs → 200"))
        #expect(!open.evidence.contains { $0.hasPrefix("GET /pause") })
        let unclear = try #require(report.findings.first { $0.id == "exposure.probe-inconclusive" })
        #expect(unclear.severity == .info && unclear.evidence.contains("GET /collective_rpc → 302") && unclear.evidence.contains("GET /pause → 502"))
    }

    @Test("no vLLM on this host: --url alone audits its HTTP routes and names the checks it could not run")
    func probeOnly() async throws {
        let simulator = VLLMSimulator(configuration: SimulatorConfiguration())
        let port = try await simulator.start(host: "127.0.0.1", port: 0)
        defer { Task { await simulator.shutdown() } }
        var host = FakeAuditHost()
        host.routes = nil
        let report = try Audit.run(host: host, url: "http://127.0.0.1:\(port)")
        #expect(report.probedOnly == "http://127.0.0.1:\(port)")
        let unauthenticated = try #require(report.findings.first { $0.id == "exposure.unauthenticated-api" })
        #expect(unauthenticated.severity == .medium, "loopback: reachable from this machine only")
        #expect(report.findings.contains { $0.id == "exposure.open-routes" && $0.severity == .low })
        let scope = try #require(report.findings.first { $0.id == "audit.probe-only" })
        #expect(scope.evidence.contains { $0.contains("not checked: its unit's sandbox") })
        #expect(report.text.hasPrefix("vLLM: not on this host; probed over HTTP at http://127.0.0.1:\(port)\n"))
        #expect(report.json.contains(#""probed_only":"http://127.0.0.1:\#(port)""#))
        // Off loopback, the same answers weigh as exposure: another machine reaches them.
        host.routes = ["/v1/models": 200]
        let remote = try Audit.run(host: host, url: "http://gpu-box:8000")
        #expect(remote.findings.first?.id == "exposure.unauthenticated-api" && remote.findings.first?.severity == .critical)
        #expect(throws: AuditError.self, "a named unit that is missing is still an error") { try Audit.run(host: host, unit: "vllm.service", url: "http://gpu-box:8000") }
        #expect(throws: AuditError.self, "no vLLM and no --url") { try Audit.run(host: host) }
        // A gateway admin listener off loopback is still named; nothing answering is an error, not a pass.
        var deployment = Deployment(vllm: .init(model: "/srv/models/sim"))
        deployment.gateway.adminListen = "0.0.0.0:9091"
        #expect(try Audit.run(host: host, deployment: deployment, url: "http://gpu-box:8000").findings.contains { $0.id == "exposure.gateway-admin" })
        host.routes = nil
        #expect(throws: AuditError.self, "nothing listens: an audit that learned nothing must not pass") { try Audit.run(host: host, url: "http://127.0.0.1:1") }
    }

    @Test("loopback is recognised however it is written; anything else counts as reachable from elsewhere")
    func loopbackNames() {
        for name in ["localhost", "LOCALHOST", "localhost.", "ip6-localhost", "app.localhost", "127.0.0.1", "127.8.9.10", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"] {
            #expect(isLoopbackHost(name), "\(name)")
        }
        for name in ["gpu-box", "10.0.0.5", "::", "0.0.0.0", "::2", "localhost.example.com", "128.0.0.1"] {
            #expect(!isLoopbackHost(name), "\(name)")
        }
        // Every check asks the same question: sockets from /proc/net/tcp*, the deployment's warnings.
        for address in ["127.0.0.2", "::1", "::ffff:127.0.0.1"] { #expect(ListeningSocket(address: address, port: 8000, inode: 1).isLoopback, "\(address)") }
        #expect(!ListeningSocket(address: "0.0.0.0", port: 8000, inode: 1).isLoopback)
        for (host, warned) in [("127.0.0.2", false), ("LOCALHOST", false), ("0.0.0.0", true)] {
            let deployment = try? Deployment.parse(yaml: "vllm: {model: /m, host: \"\(host)\"}")
            #expect(deployment?.warnings(pathExists: { _ in true }).contains { $0.path == "vllm.host" } == warned, "\(host)")
        }
    }

    @Test("--url must be http://host:port")
    func badURL() {
        for url in ["https://example.com", "http://[::1", "http://[", "http://[zzz]:80", "http://[::1]]", "http://" + String(repeating: "a", count: 100_000), "http://host:99999"] {
            #expect(throws: AuditError.self, "\(url.prefix(30))") { try Audit.run(host: Self.host(port: 8000), url: url) }
        }
        #expect((try? Audit.parse(url: "http://[::1]")) ?? ("", 0) == ("::1", 80))
        #expect((try? Audit.parse(url: "http://gpu-box")) ?? ("", 0) == ("gpu-box", 80))
    }
}
