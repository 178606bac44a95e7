import Foundation
import Testing
@testable import WardenGateway
import WardenConfig

@Suite("key tables: token syntax and secrets verified once per table")
struct KeyTableTests {
    private static let id = "0123456789ab"
    private static let secret = String(repeating: "0123456789abcdef", count: 4)

    @Test("a token is sk-warden-, 12 hex digits, a dash and 64 hex digits; either case of hex; nothing more or less", arguments: [
        ("sk-warden-\(id)-\(secret)", true),
        ("sk-warden-\(id.uppercased())-\(secret.uppercased())", true),
        ("sk-warden-\(id)-\(secret)x", false),
        ("sk-warden-\(id)-\(secret.dropLast())", false),
        ("sk-warden-\(id.dropLast())-\(secret)0", false),
        ("sk-warden-\(id)_\(secret)", false),
        ("SK-WARDEN-\(id)-\(secret)", false),
        ("sk-warden-\(id)-\(secret.dropLast())g", false),
        ("sk-warden-\(id)-\(secret.dropLast())\u{e9}", false),
        ("sk-warden-0123456789a/-\(secret)", false),
        ("sk-warden-0123456789a:-\(secret)", false),
        ("sk-warden-0123456789a@-\(secret)", false),
        ("sk-warden-0123456789a`-\(secret)", false),
        ("", false),
    ])
    func tokenSyntax(text: String, valid: Bool) {
        let token = APIKeyToken(text[...])
        #expect((token != nil) == valid)
        if let token {
            #expect(token.publicID.lowercased() == Self.id && token.secret.lowercased() == Self.secret)
        }
    }

    @Test("the scheme is Bearer in any case with spaces after it; anything else is malformed", arguments: [
        ("Bearer ", true), ("bearer ", true), ("BEARER   ", true), ("BeArEr ", true),
        ("Bearer\t", false), ("Bearer", false), ("Basic ", false), ("Bearer\u{0} ", false), (" Bearer ", false), ("Bearerx", false),
    ])
    func scheme(prefix: String, valid: Bool) throws {
        try withStore { store, token, _ in
            let table = try store.loadTable()
            let result = table.authenticate(authorization: prefix + token.text, now: 1_000)
            #expect(valid ? (try? result.get()) != nil : result == .failure(.malformed))
        }
    }

    @Test("a secret verified once is accepted again without being re-derived; a wrong secret for that key is still unknown")
    func verifiedOnce() throws {
        try withStore { store, token, record in
            let table = try store.loadTable()
            let header = "Bearer \(token.text)"
            #expect(table.authenticate(authorization: header, now: 1_000) == .success(record))
            #expect(table.authenticate(authorization: header, now: 1_000) == .success(record), "and again, from the remembered secret")
            let flipped = token.secret.last == "0" ? "1" : "0"
            let wrong = "Bearer sk-warden-\(token.publicID)-\(token.secret.dropLast())\(flipped)"
            #expect(table.authenticate(authorization: wrong, now: 1_000) == .failure(.unknown))
            #expect(table.authenticate(authorization: header, now: 1_000) == .success(record), "a wrong try does not evict the right secret")
        }
    }

    @Test("a remembered secret is no help once the key expires, is revoked or is rotated: each is refused as it would be unremembered")
    func rememberedSecretsFollowTheTable() throws {
        try withStore(expires: 2_000) { store, token, record in
            let table = try store.loadTable()
            let header = "Bearer \(token.text)"
            #expect(table.authenticate(authorization: header, now: 1_500) == .success(record))
            #expect(table.authenticate(authorization: header, now: 2_000) == .failure(.expired))
            try store.revoke(publicID: record.publicID)
            #expect(try store.loadTable().authenticate(authorization: header, now: 1_500) == .failure(.revoked))
        }
        try withStore { store, token, record in
            let table = try store.loadTable()
            #expect(table.authenticate(authorization: "Bearer \(token.text)", now: 1_000) == .success(record))
            let rotated = try store.rotate(publicID: record.publicID)
            let reloaded = try store.loadTable()
            #expect(reloaded.authenticate(authorization: "Bearer \(token.text)", now: 1_000) == .failure(.unknown), "the old secret is gone")
            #expect((try? reloaded.authenticate(authorization: "Bearer \(rotated.text)", now: 1_000).get()) != nil)
        }
    }

    @Test("limits stored out of range (a store edited by hand) are read within gateway.limits' ranges: a huge burst never traps the gateway")
    func storedLimitsClamped() throws {
        try withStore { store, _, _ in
            _ = try store.create(name: "huge", requestsPerMinute: 1, tokensPerMinute: Int.max, concurrency: -5, burst: Int.max,
                                 tokensPerDay: Int.max, tokensPerMonth: 0)
            let record = try #require(try store.list().first { $0.name == "huge" })
            #expect(record.requestsPerMinute == 1 && record.burst == 1_000_000 && record.tokensPerMinute == 1_000_000_000)
            #expect(record.concurrency == 1 && record.tokensPerDay == 1 << 48 && record.tokensPerMonth == 1)
            // The crash it prevents: admitting the first request of such a key.
            let limits = GatewayLimits(.init(Deployment.Gateway(upstream: "http://127.0.0.1:8000")), clock: { .zero }, wallClock: { 0 })
            var unlimited = record
            unlimited.tokensPerMonth = nil  // 1 token a month would refuse the request, rightly
            guard case .success = limits.admit(key: unlimited, model: "m", reserve: 16) else { Issue.record("the key's first request is admitted"); return }
        }
        var extreme = GCRA(perMinute: 1, burst: Int.max, now: .zero)
        #expect(extreme.burst == 1_000_000)
        if case .rejected = extreme.admit(now: .zero) { Issue.record("a full bucket admits") }
        var fast = GCRA(perMinute: Int.max, burst: Int.max, now: .zero)
        _ = fast.admit(now: .zero)
        _ = fast.peek(now: .seconds(Int64.max / 2))
    }

    @Test("a file that is not a key store is named as such and never written into: garbage, another program's database, an empty file")
    func foreignFiles() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keystore-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func refusal(_ name: String, create: Bool) -> String {
            do {
                _ = try KeyStore(path: directory.appendingPathComponent(name).path, create: create)
                return "opened"
            } catch {
                return "\(error)"
            }
        }
        try Data("not a database at all, just text that is long enough to be read as a header".utf8).write(to: directory.appendingPathComponent("garbage.sqlite"))
        for create in [false, true] {
            #expect(refusal("garbage.sqlite", create: create).contains("cannot read the key store at"), "\(refusal("garbage.sqlite", create: create))")
        }
        let other = try SQLiteDatabase(path: directory.appendingPathComponent("notes.sqlite").path)
        try other.execute("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('mine');")
        #expect(refusal("notes.sqlite", create: true).contains("an SQLite database of something else (tables: notes)"))
        #expect(try other.query("SELECT name FROM sqlite_master WHERE type = 'table'").compactMap { $0[0].text } == ["notes"], "nothing added to it")
        let lookalike = try SQLiteDatabase(path: directory.appendingPathComponent("lookalike.sqlite").path)
        try lookalike.execute("CREATE TABLE keys (name TEXT);")
        #expect(refusal("lookalike.sqlite", create: false).contains("a keys table that is not Warden's"))
        FileManager.default.createFile(atPath: directory.appendingPathComponent("empty.sqlite").path, contents: nil)
        #expect(refusal("empty.sqlite", create: false).contains("holds no keys table"))
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("hmac.secret").path), "no secret made for a file that is not a store")
        #expect(refusal("empty.sqlite", create: true) == "opened", "an empty file becomes a store")
    }

    @Test("a store no gateway has run on (no ledger tables) reads as no usage when opened read-only, and gets its tables from a writer")
    func storeWithoutLedger() throws {
        try withStore { store, _, _ in
            try store.database.execute("DROP TABLE usage; DROP TABLE bans;")
            let reader = try KeyStore(path: store.path, access: .readOnly)
            #expect(try !reader.hasLedger && reader.usage(since: 0).isEmpty && reader.list().count == 1)
            #expect(throws: GatewaySetupError.self, "a read-only opening verifies nothing") { try reader.loadTable() }
            let writer = try KeyStore(path: store.path, access: .readWrite)
            #expect(try writer.hasLedger && writer.usage(since: 0).isEmpty)
            #expect(try KeyStore(path: store.path, access: .readOnly).hasLedger)
        }
    }

    private func withStore(expires: Int64? = nil, _ body: (KeyStore, APIKeyToken, KeyRecord) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keytable-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try KeyStore(path: directory.appendingPathComponent("keys.sqlite").path, create: true)
        let (token, record) = try store.create(name: "t", expires: expires, now: 1_000)
        try body(store, token, record)
    }
}
