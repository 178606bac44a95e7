/// A gateway API key as clients send it: `sk-warden-<public id>-<secret>`.
///
/// The public id (12 lower-case hex digits) names the key in logs, metrics and `warden keys`; the secret
/// (64 hex digits, 256 bits) is shown once at creation and stored only as an HMAC.
public struct APIKeyToken: Sendable, Equatable {
    public static let prefix = "sk-warden-"
    public let publicID: String
    public let secret: String

    public var text: String { "\(Self.prefix)\(publicID)-\(secret)" }

    init(publicID: String, secret: String) {
        self.publicID = publicID
        self.secret = secret
    }

    /// Parses a presented token; `nil` for anything not shaped like a Warden key.
    public init?(_ text: Substring) {
        guard text.hasPrefix(Self.prefix) else { return nil }
        let rest = text.dropFirst(Self.prefix.count)
        guard let dash = rest.firstIndex(of: "-") else { return nil }
        let publicID = rest[..<dash], secret = rest[rest.index(after: dash)...]
        let isHex = { (byte: UInt8) in (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66) || (byte >= 0x41 && byte <= 0x46) }
        guard publicID.utf8.count == 12, secret.utf8.count == 64, publicID.utf8.allSatisfy(isHex), secret.utf8.allSatisfy(isHex) else { return nil }
        self.publicID = String(publicID)
        self.secret = String(secret)
    }

    static func generate() -> APIKeyToken {
        APIKeyToken(publicID: randomHex(bytes: 6), secret: randomHex(bytes: 32))
    }
}

/// Hex text of `count` random bytes from the system generator (one call per 8 bytes).
func randomHex(bytes count: Int) -> String {
    var generator = SystemRandomNumberGenerator()
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    text.reserveCapacity(count * 2)
    var word: UInt64 = 0
    for index in 0..<count {
        if index % 8 == 0 { word = generator.next() }
        let byte = UInt8(truncatingIfNeeded: word >> (8 * UInt64(index % 8)))
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0x0F)])
    }
    return String(decoding: text, as: UTF8.self)
}
