import Foundation
import Testing
import WardenGateway
import WardenTestSupport

@Suite("warden keys (the real binary)")
struct KeysCommandTests {
    @Test("a revoked key cannot be rotated back into use; an active one can, and its old secret stops working")
    func rotateNeverRevives() throws {
        let scratch = try ScratchDirectory()
        let config = try scratch.write("w.yaml", """
            vllm: {model: /models/qwen, served_model_name: qwen}
            gateway: {key_store: \(scratch.url.path)/keys.sqlite}
            """)
        let created = try BuiltProduct.run("warden", ["keys", "create", "--name", "tenant", "--config", config])
        #expect(created.status == 0, "\(created.stderr)")
        let id = try #require(created.stderr.split(separator: " ").dropFirst(2).first.map(String.init))
        let rotated = try BuiltProduct.run("warden", ["keys", "rotate", id, "--config", config])
        #expect(rotated.status == 0)
        #expect(rotated.stdout.hasPrefix("sk-warden-\(id)-"))
        let table = try KeyStore(path: scratch.url.path + "/keys.sqlite", create: false).loadTable()
        #expect(table.authenticate(authorization: "Bearer \(created.stdout.trimmingCharacters(in: .whitespacesAndNewlines))", now: 0) == .failure(.unknown))

        #expect(try BuiltProduct.run("warden", ["keys", "revoke", id, "--config", config]).status == 0)
        let refused = try BuiltProduct.run("warden", ["keys", "rotate", id, "--config", config])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("is revoked; a revoked key cannot be rotated back into use"))
        #expect(refused.stdout.isEmpty, "no new secret is printed")
        let secret = rotated.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let after = try KeyStore(path: scratch.url.path + "/keys.sqlite", create: false).loadTable()
        #expect(after.authenticate(authorization: "Bearer \(secret)", now: 0) == .failure(.revoked))
    }
}

@Suite("warden install (the real binary)")
struct InstallCommandTests {
    @Test("a build that needs the Swift runtime is refused with the fix named; nothing is written")
    func refusesToolchainBinary() throws {
        let scratch = try ScratchDirectory()
        let config = try scratch.write("w.yaml", "vllm: {model: /srv/models/qwen}\n")
        let root = scratch.url.appendingPathComponent("root").path
        let result = try BuiltProduct.run("warden", ["install", "--config", config, "--root", root])
        #expect(result.status == 1)
        #expect(result.stderr.contains("needs the Swift runtime libraries at run time"))
        #expect(result.stderr.contains("apt install ./warden_"))
        #expect(!FileManager.default.fileExists(atPath: root + "/etc/systemd/system/vllm.service"))
    }
}

@Suite("warden keys create: mistakes refused before a key exists")
struct KeysCreateValidationTests {
    @Test("an expiry in the past, an empty or repeated name, and an unserved model are refused; --force allows the model; an empty store lists nothing")
    func refusals() throws {
        let scratch = try ScratchDirectory()
        let config = try scratch.write("w.yaml", """
            vllm: {model: /models/qwen, served_model_name: qwen}
            gateway: {key_store: \(scratch.url.path)/keys.sqlite}
            """)
        let empty = try BuiltProduct.run("warden", ["keys", "list", "--config", config])
        #expect(empty.status == 0)
        #expect(empty.stderr.contains("no keys yet"))
        func create(_ arguments: [String]) throws -> CommandResult {
            try BuiltProduct.run("warden", ["keys", "create", "--config", config] + arguments)
        }
        let past = try create(["--name", "a", "--expires", "2020-01-01"])
        #expect(past.status == 2)
        #expect(past.stderr.contains("is in the past"))
        #expect(try create(["--name", "a", "--expires", "2027-02-31"]).status == 2, "not a date")
        #expect(try create(["--name", " "]).stderr.contains("--name must not be empty"))
        let typo = try create(["--name", "a", "--models", "qwen-tyni"])
        #expect(typo.status == 2)
        #expect(typo.stderr.contains("no model 'qwen-tyni' is served here (vllm.served_model_name is 'qwen')"))
        #expect(try create(["--name", "a", "--models", "qwen-lora", "--force"]).status == 0)
        let twice = try create(["--name", "a"])
        #expect(twice.status == 2)
        #expect(twice.stderr.contains("a key named 'a' exists already"))
        #expect(try create(["--name", "b", "--expires", "90d", "--models", "qwen"]).status == 0)
        // Values the gateway's arithmetic would overflow on are refused here, with the range, never stored.
        let huge = try create(["--name", "c", "--burst", "9223372036854775807"])
        #expect(huge.status == 2)
        #expect(huge.stderr.contains("--burst 9223372036854775807 is out of range: give a whole number from 1 to 1000000"), "\(huge.stderr)")
        #expect(try create(["--name", "c", "--tpm", "1000000001"]).stderr.contains("--tpm 1000000001 is out of range"))
        #expect(try create(["--name", "c", "--quota-day", "281474976710657"]).status == 2)
        for expiry in ["106751991167301d", "9223372036854775807h", "9223372036854775807m", "3000000d"] {
            let far = try create(["--name", "c", "--expires", expiry])
            #expect(far.status == 2, "\(expiry)")
            #expect(far.stderr.contains("ending by 9999-12-31"), "\(far.stderr)")
            #expect(!far.stderr.contains("Fatal") && !far.stderr.contains("overflow"))
        }
        #expect(try create(["--name", "c", "--expires", "2900000d"]).status == 0, "just before 9999-12-31")
        for name in ["two\nlines", "esc\u{1B}[31mred", "tab\there", String(repeating: "n", count: 129)] {
            let refused = try create(["--name", name])
            #expect(refused.status == 2, "\(name)")
            #expect(refused.stderr.contains("control character") || refused.stderr.contains("at most 128"), "\(refused.stderr)")
        }
        let existing = try #require(try KeyStore(path: scratch.url.path + "/keys.sqlite", create: false).list().first?.publicID)
        #expect(try create(["--name", existing]).stderr.contains("is another key's id"))
        #expect(try create(["--name", "Zoë 🚀 team"]).status == 0, "any printable text")
    }
}

@Suite("warden keys update and --format: limits changed in place, every list in JSON too")
struct KeysUpdateTests {
    @Test("update changes limits, models, name and expiry (and back to defaults); mistakes are refused; list --format json shows it")
    func update() throws {
        let scratch = try ScratchDirectory()
        let store = scratch.url.path + "/keys.sqlite"
        let config = try scratch.write("w.yaml", """
            vllm: {model: /models/qwen, served_model_name: qwen}
            gateway: {key_store: \(store)}
            """)
        func warden(_ arguments: [String]) throws -> CommandResult { try BuiltProduct.run("warden", arguments + ["--config", config]) }
        let created = try warden(["keys", "create", "--name", "team-a", "--rpm", "10"])
        let id = try #require(created.stderr.split(separator: " ").dropFirst(2).first.map(String.init))
        _ = try warden(["keys", "create", "--name", "team-b"])
        let updated = try warden(["keys", "update", id, "--tpm", "5000", "--rpm", "default", "--burst", "3", "--name", "team-a2", "--expires", "30d"])
        #expect(updated.status == 0, "\(updated.stderr)")
        var record = try #require(try KeyStore(path: store, create: false).list().first { $0.publicID == id })
        #expect(record.tokensPerMinute == 5000 && record.requestsPerMinute == nil && record.burst == 3 && record.name == "team-a2")
        #expect(record.expires != nil)
        #expect(try warden(["keys", "update", id, "--expires", "never", "--quota-day", "100000", "--quota-month", "2000000"]).status == 0)
        record = try #require(try KeyStore(path: store, create: false).list().first { $0.publicID == id })
        #expect(record.expires == nil && record.tokensPerDay == 100_000 && record.tokensPerMonth == 2_000_000)
        #expect(try warden(["keys", "update", id, "--name", "team-b"]).stderr.contains("exists already"))
        #expect(try warden(["keys", "update", id, "--models", "qwen-tyni"]).stderr.contains("no model 'qwen-tyni'"))
        #expect(try warden(["keys", "update", id, "--rpm", "0"]).status == 2)
        let huge = try warden(["keys", "update", id, "--burst", "9223372036854775807"])
        #expect(huge.status == 2 && huge.stderr.contains("give a whole number from 1 to 1000000, or default"), "\(huge.stderr)")
        #expect(try warden(["keys", "update", id, "--expires", "9223372036854775807h"]).stderr.contains("ending by 9999-12-31"))
        #expect(try warden(["keys", "update", id, "--expires", "2020-01-01"]).stderr.contains("is in the past"))
        #expect(try warden(["keys", "update", id]).stderr.contains("nothing to change"))
        #expect(try warden(["keys", "update", "nosuchkey000", "--tpm", "5"]).stderr.contains("no key with id"))
        _ = try warden(["keys", "revoke", id])
        #expect(try warden(["keys", "update", id, "--tpm", "7"]).status == 0, "limits of a revoked key may change")
        let lines = try warden(["keys", "list", "--format", "json"]).stdout.split(separator: "\n").map { try jsonObject(String($0)) }
        let mine = try #require(lines.first { $0["id"] as? String == id })
        #expect(mine["status"] as? String == "revoked" && mine["tpm"] as? Int == 7, "updating never un-revokes")
        #expect(try warden(["keys", "list"]).stdout.contains(" UTC") == false)
        #expect(try warden(["keys", "list"]).stdout.range(of: #"\d{4}-\d\d-\d\d \d\d:\d\d"#, options: .regularExpression) != nil, "times, not only dates")
    }

    // The gateway checks the store every second; the 30 s deadline leaves room for a loaded CI machine (where one
    // request was seen to take over a second).
    @Test("a running gateway applies `warden keys update` at its next key-store check")
    func live() async throws {
        try await withGatewayProcess { gateway in
            let created = try BuiltProduct.run("warden", ["keys", "create", "--name", "live", "--config", gateway.config])
            let token = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let id = try #require(created.stderr.split(separator: " ").dropFirst(2).first.map(String.init))
            let bearer = ["Authorization": "Bearer \(token)"]
            var answers: [Int] = []  // every status seen, for the failure message
            func answer() throws -> Int {
                answers.append(try request(port: gateway.port, "GET", "/v1/models", headers: bearer).status)
                return answers.last ?? 0
            }
            // The log says when the gateway saw each change ("key store changed; keys reloaded").
            func log() -> String { String(((try? String(contentsOfFile: gateway.config + ".stderr", encoding: .utf8)) ?? "").suffix(3_000)) }
            #expect(try await eventually(timeout: .seconds(30)) { try answer() == 200 }, "\(answers)\n\(log())")
            let updated = try BuiltProduct.run("warden", ["keys", "update", id, "--rpm", "1", "--burst", "1", "--config", gateway.config])
            #expect(updated.status == 0, "\(updated.stderr)")
            #expect(try await eventually(timeout: .seconds(30)) { try answer() == 429 }, "\(answers)\n\(log())")
        }
    }
}
