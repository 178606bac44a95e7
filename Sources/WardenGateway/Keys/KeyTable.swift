#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// An immutable snapshot of the keys, swapped whole on reload; lookups never touch the database.
public struct KeyTable: Sendable {
    public enum Failure: String, Error, Sendable, Equatable {
        case missing, malformed, unknown, revoked, expired
    }

    private let records: [String: KeyRecord]
    /// Distinct for every table built: a connection's cached authentication holds only for the table it came from.
    let generation = KeyTable.generations.add(1, ordering: .relaxed).newValue
    private static let generations = Atomic<UInt64>(0)
    private let hasher: KeyHasher
    /// Hash compared against when the public id is unknown, so every lookup does the same work.
    private let decoy: [UInt8]

    init(records: [KeyRecord], hasher: KeyHasher) {
        self.records = Dictionary(records.map { ($0.publicID, $0) }, uniquingKeysWith: { _, last in last })
        self.hasher = hasher
        self.decoy = hasher.hash("decoy")
    }

    public var count: Int { records.count }
    /// Every key, in no particular order.
    var all: [KeyRecord] { Array(records.values) }

    /// Checks `Authorization: Bearer sk-warden-…`: HMAC of the presented secret, compared in constant time.
    public func authenticate(authorization: String?, now: Int64) -> Result<KeyRecord, Failure> {
        authenticate(authorization: authorization, now: now, recent: nil)
    }

    /// As above, but a connection's last successful authentication is reused when the same header comes again
    /// under the same table (no HMAC): revocations and key changes make a new table, so they still apply at once.
    func authenticate(authorization: String?, now: Int64, recent: RecentKey?) -> Result<KeyRecord, Failure> {
        if let recent, recent.generation == generation, let authorization, Self.sameBytes(recent.authorization, authorization),
           recent.record.isUsable(at: now) {
            return .success(recent.record)
        }
        return verify(authorization: authorization, now: now)
    }

    /// Byte equality (`==` on strings is Unicode equivalence), with one `memcmp` rather than a per-byte iteration.
    static func sameBytes(_ first: String, _ second: String) -> Bool {
        guard first.utf8.count == second.utf8.count else { return false }
        var first = first, second = second
        return first.withUTF8 { a in second.withUTF8 { b in a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 } }
    }

    private func verify(authorization: String?, now: Int64) -> Result<KeyRecord, Failure> {
        guard let authorization else { return .failure(.missing) }
        guard authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " else { return .failure(.malformed) }
        guard let token = APIKeyToken(authorization.dropFirst(7).drop(while: { $0 == " " })) else { return .failure(.malformed) }
        let record = records[token.publicID]
        let presented = hasher.hash(Substring(token.secret))
        guard constantTimeEqual(presented, record?.secretHash ?? decoy), let record else { return .failure(.unknown) }
        if record.revoked != nil { return .failure(.revoked) }
        if let expires = record.expires, now >= expires { return .failure(.expired) }
        return .success(record)
    }
}

/// A connection's last successful authentication.
struct RecentKey {
    var authorization: String
    var generation: UInt64
    var record: KeyRecord
}

func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for index in a.indices { difference |= a[index] ^ b[index] }
    return difference == 0
}
