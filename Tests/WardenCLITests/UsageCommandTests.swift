import Foundation
import Testing
import WardenConfig
import WardenGateway

@Suite("warden usage (the real binary)")
struct UsageCommandTests {
    @Test("text, JSON and CSV by key (names shown), by day and by model; --key by name; --since filters; unknown keys are refused")
    func formats() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.url.path + "/keys.sqlite"
        let config = try scratch.write("w.yaml", """
            vllm: {model: /models/qwen, served_model_name: qwen}
            gateway: {key_store: \(path)}
            """)
        let store = try KeyStore(path: path, create: true)
        let (_, alice) = try store.create(name: "alice")
        let (_, bob) = try store.create(name: "bob, the bot")
        let may1 = QuotaCalendar.parseDate("2027-05-01")!, may2 = QuotaCalendar.parseDate("2027-05-02")!
        func cell(_ key: KeyRecord, _ hour: Int64, _ outcome: String = "", model: String = "qwen") -> UsageCell {
            UsageCell(key: key.publicID, model: model, route: "POST /v1/chat/completions", hour: hour, outcome: outcome)
        }
        try store.addUsage([
            cell(alice, may1 + 3600): UsageCounts(requests: 2, promptTokens: 20, completionTokens: 30, chargedTokens: 50),
            cell(alice, may2, model: "lora"): UsageCounts(requests: 1, promptTokens: 5, completionTokens: 5, chargedTokens: 10),
            cell(alice, may2, "quota_day", model: ""): UsageCounts(requests: 4),
            cell(bob, may2): UsageCounts(requests: 1, promptTokens: 7, completionTokens: 3, chargedTokens: 10),
        ])
        func usage(_ arguments: String...) throws -> String {
            let result = try BuiltProduct.run("warden", ["usage", "--config", config, "--since", "2027-05-01"] + arguments)
            #expect(result.status == 0, "\(result.stderr)")
            return result.stdout
        }
        #expect(try usage() == """
            KEY           NAME          REQUESTS  REFUSED  PROMPT  COMPLETION  CHARGED
            \(alice.publicID)  alice         3         4        25      35          60
            \(bob.publicID)  bob, the bot  1         0        7       3           10
            refused by reason: quota_day 4

            """)
        #expect(try usage("--format", "csv") == """
            key,name,requests,refused,prompt_tokens,completion_tokens,charged_tokens
            \(alice.publicID),alice,3,4,25,35,60
            \(bob.publicID),"bob, the bot",1,0,7,3,10

            """)
        let json = try JSONSerialization.jsonObject(with: Data(try usage("--format", "json", "--by", "day").utf8)) as? [String: Any]
        #expect(json?["since"] as? String == "2027-05-01")
        let days = json?["rows"] as? [[String: Any]] ?? []
        #expect(days.map { $0["day"] as? String } == ["2027-05-01", "2027-05-02"])
        #expect(days.map { $0["charged_tokens"] as? Int } == [50, 20])
        #expect((days.last?["refusals"] as? [String: Int]) == ["quota_day": 4])
        #expect(try usage("--by", "model", "--key", "alice", "--format", "csv") == """
            model,requests,refused,prompt_tokens,completion_tokens,charged_tokens
            -,0,4,0,0,0
            lora,1,0,5,5,10
            qwen,2,0,20,30,50

            """)
        let later = try BuiltProduct.run("warden", ["usage", "--config", config, "--since", "2027-05-02", "--key", bob.publicID, "--format", "csv"])
        #expect(later.stdout.hasSuffix("\(bob.publicID),\"bob, the bot\",1,0,7,3,10\n"))
        let unknown = try BuiltProduct.run("warden", ["usage", "--config", config, "--key", "carol"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("no key with the id or name 'carol'"))
        #expect(try BuiltProduct.run("warden", ["usage", "--config", config, "--since", "May"]).status != 0)
    }
}
