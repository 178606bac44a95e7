/// An immutable snapshot of the keys, swapped whole on reload; lookups never touch the database.
public struct KeyTable: Sendable {
    public enum Failure: String, Error, Sendable, Equatable {
        case missing, malformed, unknown, revoked, expired
    }

    private let records: [String: KeyRecord]
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

func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for index in a.indices { difference |= a[index] ^ b[index] }
    return difference == 0
}
