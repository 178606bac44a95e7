import Foundation
import Testing
@testable import WardenGateway

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

    private func withStore(expires: Int64? = nil, _ body: (KeyStore, APIKeyToken, KeyRecord) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keytable-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try KeyStore(path: directory.appendingPathComponent("keys.sqlite").path, create: true)
        let (token, record) = try store.create(name: "t", expires: expires, now: 1_000)
        try body(store, token, record)
    }
}
