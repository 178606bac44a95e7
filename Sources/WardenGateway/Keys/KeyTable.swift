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
    /// Secrets that passed the HMAC under this table, by public id (at most one per key of the table).
    private let verified = VerifiedSecrets()

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
        if let recent, let authorization, recent.matches(authorization, generation: generation), recent.record.isUsable(at: now) {
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
        guard var authorization else { return .failure(.missing) }
        guard let token = authorization.withUTF8(Self.bearerToken) else { return .failure(.malformed) }
        // A secret this table verified before is recognised by its digest, without the HMAC: every stream of a
        // burst arrives on a new connection, and each paid for one. Looked up for every token, known id or not, so
        // the lookup tells nothing about which ids exist; a mismatch takes the HMAC path, so a wrong secret costs
        // what it always did.
        let remembered = verified.matches(token)
        let record = records[token.publicID]
        if remembered, let record {
            return record.usability(at: now)
        }
        let presented = hasher.hash(Substring(token.secret))
        guard constantTimeEqual(presented, record?.secretHash ?? decoy), let record else { return .failure(.unknown) }
        verified.remember(token)
        return record.usability(at: now)
    }

    /// The token of `Bearer <token>` (the scheme in any case, spaces after it skipped); `nil` when malformed.
    private static func bearerToken(_ bytes: UnsafeBufferPointer<UInt8>) -> APIKeyToken? {
        let scheme = "bearer "
        guard bytes.count > scheme.utf8.count,
              HeaderPolicy.name(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[..<scheme.utf8.count])), equalsLowercase: scheme) else { return nil }
        var start = scheme.utf8.count
        while start < bytes.count, bytes[start] == UInt8(ascii: " ") { start += 1 }
        return APIKeyToken(utf8: UnsafeBufferPointer(rebasing: bytes[start...]))
    }
}

/// The secrets a key table has verified, shared by its copies and dropped with it: a reload, a revocation or a
/// rotation builds a new table, so nothing verified under the old keys is trusted after. Kept as digests — two
/// SipHash values under this process's random seed — so this memory holds no usable token.
private final class VerifiedSecrets: Sendable {
    private struct Digest: Sendable {
        var first: Int
        var second: Int

        init(_ token: APIKeyToken) {
            var secret = token.secret
            (first, second) = secret.withUTF8 { bytes in
                var one = Hasher(), two = Hasher()
                one.combine(1 as UInt8)
                two.combine(2 as UInt8)
                one.combine(bytes: UnsafeRawBufferPointer(bytes))
                two.combine(bytes: UnsafeRawBufferPointer(bytes))
                return (one.finalize(), two.finalize())
            }
        }

        /// Equal in constant time.
        func matches(_ other: Digest) -> Bool { (first ^ other.first) | (second ^ other.second) == 0 }
    }

    private let digests = Mutex<[String: Digest]>([:])

    func matches(_ token: APIKeyToken) -> Bool {
        let presented = Digest(token)
        return digests.withLock { $0[token.publicID] }.map { $0.matches(presented) } ?? false
    }

    func remember(_ token: APIKeyToken) {
        let digest = Digest(token)
        digests.withLock { $0[token.publicID] = digest }
    }
}

extension KeyRecord {
    /// Success unless revoked or expired at `now`.
    fileprivate func usability(at now: Int64) -> Result<KeyRecord, KeyTable.Failure> {
        if revoked != nil { return .failure(.revoked) }
        if let expires, now >= expires { return .failure(.expired) }
        return .success(self)
    }
}

/// A connection's last successful authentication.
final class RecentKey {
    let authorization: String
    let generation: UInt64
    let record: KeyRecord

    init(authorization: String, generation: UInt64, record: KeyRecord) {
        self.authorization = authorization
        self.generation = generation
        self.record = record
    }

    /// The same header, byte for byte, under the same table.
    func matches(_ authorization: String, generation: UInt64) -> Bool {
        self.generation == generation && KeyTable.sameBytes(self.authorization, authorization)
    }
}

func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for index in a.indices { difference |= a[index] ^ b[index] }
    return difference == 0
}
