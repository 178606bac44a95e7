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
        var text = text
        guard let token = text.withUTF8({ Self(utf8: $0) }) else { return nil }
        self = token
    }

    /// The same from the token's bytes, as they arrive in `Authorization`: `sk-warden-`, 12 hex digits, `-`,
    /// 64 hex digits, nothing else.
    init?(utf8 bytes: UnsafeBufferPointer<UInt8>) {
        let prefix = Self.prefixBytes
        let idEnd = prefix.count + 12
        guard bytes.count == idEnd + 1 + 64, bytes[idEnd] == UInt8(ascii: "-"),
              bytes.starts(with: prefix), bytes[prefix.count..<idEnd].allSatisfy(Self.isHexDigit),
              bytes[(idEnd + 1)...].allSatisfy(Self.isHexDigit) else { return nil }
        publicID = String(decoding: UnsafeBufferPointer(rebasing: bytes[prefix.count..<idEnd]), as: UTF8.self)
        secret = String(decoding: UnsafeBufferPointer(rebasing: bytes[(idEnd + 1)...]), as: UTF8.self)
    }

    private static let prefixBytes = Array(prefix.utf8)

    private static func isHexDigit(_ byte: UInt8) -> Bool { FieldSyntax.hexValue(byte) != nil }

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
