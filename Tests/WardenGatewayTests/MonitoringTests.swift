import Foundation
import Testing
import WardenConfig
import WardenSystemd
import WardenTestSupport
@testable import WardenGateway

/// The shipped alert rules and dashboard against promtool and against the metrics that really exist.
@Suite("monitoring: alert rules pass promtool, /metrics passes promtool, every metric used exists")
struct MonitoringTests {
    /// Runs promtool (Debian's `prometheus` package; scripts/test installs it) with `input` on standard input.
    func promtool(_ arguments: [String], input: String = "", in directory: URL? = nil) throws -> (status: Int32, output: String) {
        let path = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let executable = try #require(path, "promtool is missing: apt-get install prometheus (scripts/test installs it)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        let output = Pipe(), standardInput = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = standardInput
        try process.run()
        standardInput.fileHandleForWriting.write(Data(input.utf8))
        try standardInput.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    @Test("the alert rules pass `promtool check rules` and their `promtool test rules` unit tests")
    func rules() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rules-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try (AlertRules.yaml + "\n").write(to: directory.appendingPathComponent("warden-alerts.yml"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(at: packageRoot.appendingPathComponent("Tests/Monitoring/warden-alerts.test.yml"),
                                         to: directory.appendingPathComponent("warden-alerts.test.yml"))
        let check = try promtool(["check", "rules", "warden-alerts.yml"], in: directory)
        #expect(check.status == 0, "\(check.output)")
        #expect(check.output.contains("SUCCESS: 10 rules found"))
        let test = try promtool(["test", "rules", "warden-alerts.test.yml"], in: directory)
        #expect(test.status == 0, "\(test.output)")
    }

    @Test("the gateway's live /metrics passes `promtool check metrics`; the dashboard and rules use only metrics the gateway or vllm-sim expose")
    func metricNames() async throws {
        try await withGateway { harness in
            let id = try #require(try harness.store.list().first?.publicID)
            try harness.store.setQuota(publicID: id, period: .month, tokens: 50)
            try harness.gateway.reloadKeysIfChanged()
            #expect(try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x","max_tokens":3}"#, headers: harness.bearer).status == 200)
            #expect(try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x","max_tokens":300}"#, headers: harness.bearer).status == 429)
            harness.gateway.persistUsage()
            let gateway = harness.gateway.metricsText
            let lint = try promtool(["check", "metrics"], input: gateway)
            #expect(lint.status == 0, "\(lint.output)")

            let simulator = try request(port: harness.simulatorPort, "GET", "/metrics", headers: ["Authorization": "Bearer \(harness.upstreamKey)"]).body
            var exposed = Set<String>()
            for line in (gateway + "\n" + simulator).split(separator: "\n") where line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                let name = String(parts[2])
                exposed.insert(name)
                if parts[3] == "histogram" { exposed.formUnion(["_bucket", "_sum", "_count"].map { name + $0 }) }
            }
            let expressions = GrafanaDashboard.expressions
                + AlertRules.yaml.split(separator: "\n").compactMap { $0.split(separator: "expr: ", maxSplits: 1).dropFirst().first.map(String.init) }
            let used = Set(expressions.flatMap { $0.matches(of: /(vllm:[a-z_:]+|warden_[a-z_]+)/).map { String($0.output.0) } })
            #expect(used.isSuperset(of: ["vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
                                         "warden_quota_used_ratio", "warden_bans_active", "warden_gateway_overhead_seconds_bucket"]))
            #expect(used.subtracting(exposed).isEmpty, "used but exposed by neither: \(used.subtracting(exposed).sorted())")
        }
    }

    @Test("the dashboard is JSON Grafana can import: a Prometheus data-source input and one target per query")
    func dashboard() throws {
        let document = try #require(try JSONSerialization.jsonObject(with: Data(GrafanaDashboard.json.utf8)) as? [String: Any])
        #expect((document["__inputs"] as? [[String: Any]])?.first?["name"] as? String == "DS_PROMETHEUS")
        let panels = document["panels"] as? [[String: Any]] ?? []
        #expect(panels.flatMap { $0["targets"] as? [[String: Any]] ?? [] }.compactMap { $0["expr"] as? String } == GrafanaDashboard.expressions)
    }
}
