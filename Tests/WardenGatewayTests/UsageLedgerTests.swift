import Foundation
import Testing
import WardenConfig
import WardenTestSupport
@testable import WardenGateway

@Suite("usage ledger: batched writes, compaction, retention, persisted bans, and a restart")
struct UsageLedgerTests {
    func withStore(_ body: (KeyStore) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try body(try KeyStore(path: directory.appendingPathComponent("keys.sqlite").path, create: true))
    }

    static let day: Int64 = QuotaCalendar.days(year: 2027, month: 5, day: 10) * 86_400

    func cell(_ hour: Int64, outcome: String = "", model: String = "qwen") -> UsageCell {
        UsageCell(key: "k1", model: model, route: "POST /v1/completions", hour: hour, outcome: outcome)
    }

    @Test("batches add up per cell; compaction merges old hours into their day without changing any total; retention deletes")
    func compaction() throws {
        try withStore { store in
            let ledger = UsageLedger()
            for hour in [Self.day, Self.day + 3600, Self.day + 7200, Self.day + 86_400] {
                ledger.add(cell(hour), UsageCounts(requests: 1, promptTokens: 10, completionTokens: 5, chargedTokens: 15))
                ledger.add(cell(hour), UsageCounts(requests: 1, promptTokens: 10, completionTokens: 5, chargedTokens: 15))
            }
            ledger.add(cell(Self.day + 3600, outcome: "quota_day", model: ""), UsageCounts(requests: 3))
            try store.addUsage(ledger.take())
            #expect(ledger.take().isEmpty)
            try store.addUsage([cell(Self.day): UsageCounts(requests: 1, chargedTokens: 1)])
            let before = try store.usage(since: 0)
            #expect(before.count == 5)
            #expect(before.first?.1 == UsageCounts(requests: 3, promptTokens: 20, completionTokens: 10, chargedTokens: 31))

            try store.compactUsage(hourlyBefore: Self.day + 86_400, deleteBefore: 0)
            let after = try store.usage(since: 0)
            #expect(after.map(\.0.hour) == [Self.day, Self.day, Self.day + 86_400])
            #expect(after.first { $0.0.outcome.isEmpty }?.1 == UsageCounts(requests: 7, promptTokens: 60, completionTokens: 30, chargedTokens: 91))
            #expect(after.first { $0.0.outcome == "quota_day" }?.1.requests == 3)
            try store.compactUsage(hourlyBefore: Self.day + 86_400, deleteBefore: 0)
            #expect(try store.usage(since: 0).map(\.1) == after.map(\.1), "compacting twice changes nothing")
            #expect(try store.chargedTokens(since: Self.day) == ["k1": 121])

            try store.compactUsage(hourlyBefore: Self.day, deleteBefore: Self.day + 86_400)
            #expect(try store.usage(since: 0).map(\.0.hour) == [Self.day + 86_400])
        }
    }

    @Test("sums saturate instead of trapping, in the ledger and in the report: a store may hold any number")
    func sumsSaturate() {
        let ledger = UsageLedger()
        let huge = UsageCounts(requests: .max, promptTokens: .max, completionTokens: .max, chargedTokens: .max)
        ledger.add(cell(Self.day), huge)
        ledger.add(cell(Self.day), huge)
        #expect(ledger.take()[cell(Self.day)] == huge)
        let cells = [(cell(Self.day), huge), (cell(Self.day + 3600), huge), (cell(Self.day, outcome: "quota_day"), huge),
                     (cell(Self.day, outcome: "rate_limited"), huge)]
        for grouping in UsageReport.Grouping.allCases {
            let rows = UsageReport.build(cells, by: grouping, names: ["k1": "team"])
            #expect(rows.first?.counts == huge && rows.first?.refused == .max)
            #expect(UsageReport.refusals(rows + rows) == ["quota_day": .max, "rate_limited": .max])
        }
    }

    @Test("bans are stored with wall-clock ends and restored with what is left; bans already over are not")
    func bans() throws {
        try withStore { store in
            var table = BanTable(policy: BanTable.Policy(maxFailures: 1, banTime: .seconds(600), ignore: []))
            _ = table.recordFailure(IPAddress("192.0.2.1")!, now: .seconds(100))
            _ = table.recordFailure(IPAddress("2001:db8::1")!, now: .seconds(400))
            let stored = table.stored(now: .seconds(500), epoch: 1_000_000, limit: 10)
            #expect(stored.map(\.until) == [1_000_500, 1_000_200])
            #expect(table.stored(now: .seconds(500), epoch: 1_000_000, limit: 1).count == 1)
            try store.saveBans(stored)

            let loaded = try store.loadBans(now: 1_000_300)
            #expect(loaded.count == 1, "the IPv4 ban ended at 1_000_200")
            var restored = BanTable(policy: table.policy)
            restored.restore(loaded, now: .seconds(5), epoch: 1_000_300)
            #expect(restored.banRemaining(IPAddress("2001:db8::77")!, now: .seconds(5)) == .seconds(200), "the whole /64 stays banned")
            #expect(restored.banRemaining(IPAddress("192.0.2.1")!, now: .seconds(5)) == nil)
        }
    }

    @Test("through the gateway: answered and refused requests reach the ledger; a restart starts quotas and bans from it")
    func restart() async throws {
        try await withGateway { harness in
            let id = try #require(try harness.store.list().first?.publicID)
            try harness.store.setQuota(publicID: id, period: .day, tokens: 100)
            try harness.gateway.reloadKeysIfChanged()
            let refused = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x","max_tokens":200}"#, headers: harness.bearer)
            #expect(refused.status == 429)
            #expect(refused.body.contains("quota_exceeded"))
            #expect(refused.headers["x-ratelimit-limit-tokens-day"] == "100")
            let answered = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x","max_tokens":5}"#, headers: harness.bearer)
            #expect(answered.status == 200)
            let banned = IPAddress("192.0.2.9")!
            for _ in 0..<5 { _ = harness.gateway.core.limits.recordAuthFailure(banned) }

            harness.gateway.persistUsage()
            let rows = try harness.store.usage(since: 0)
            let served = try #require(rows.first { $0.0.outcome.isEmpty })
            #expect(served.0 == UsageCell(key: id, model: "qwen", route: "/v1/completions", hour: served.0.hour, outcome: ""))
            #expect(served.1.requests == 1 && served.1.completionTokens == 5 && served.1.chargedTokens == served.1.promptTokens + 5)
            #expect(rows.first { $0.0.outcome == "quota_day" }?.1.requests == 1)

            let second = try GatewayServer(configuration: harness.gateway.core.configuration, accessLog: MemorySink())
            _ = try await second.start()
            let key = try #require(try harness.store.list().first)
            #expect(second.core.limits.quotaUse([key]).map(\.used) == [served.1.chargedTokens])
            #expect(second.core.limits.banRemaining(banned) != nil)
            await second.drain()
        }
    }

    @Test("a model vLLM refuses is no ledger row of its own, and an absurdly long model name is refused before it is logged")
    func inventedModels() async throws {
        try await withGateway { harness in
            let id = try #require(try harness.store.list().first?.publicID)
            for index in 0..<20 {
                let invented = try request(port: harness.port, "POST", "/v1/completions",
                                           json: #"{"model":"invented-\#(index)","prompt":"x","max_tokens":1}"#, headers: harness.bearer)
                #expect(invented.status == 404, "vllm-sim refuses a model it does not serve, as vLLM does")
            }
            let answered = try request(port: harness.port, "POST", "/v1/completions", json: #"{"model":"qwen","prompt":"x","max_tokens":2}"#, headers: harness.bearer)
            #expect(answered.status == 200)
            let long = String(repeating: "m", count: Admission.maxModelNameBytes + 1)
            let refused = try request(port: harness.port, "POST", "/v1/completions", json: #"{"model":"\#(long)","prompt":"x"}"#, headers: harness.bearer)
            #expect(refused.status == 400 && refused.body.contains("at most 1024 bytes") && !refused.body.contains(long))
            harness.gateway.persistUsage()
            let models = Set(try harness.store.usage(since: 0).filter { $0.0.key == id }.map(\.0.model))
            #expect(models == ["", "qwen"], "20 invented names make one unnamed row, not 20: \(models)")
            #expect(!harness.accessLog.contents.contains { $0.contains(long) })
        }
    }
}
