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
        guard publicID.count == 12, secret.count == 64, publicID.allSatisfy(\.isHexDigit), secret.allSatisfy(\.isHexDigit) else { return nil }
        self.publicID = String(publicID)
        self.secret = String(secret)
    }

    static func generate() -> APIKeyToken {
        APIKeyToken(publicID: randomHex(bytes: 6), secret: randomHex(bytes: 32))
    }
}

func randomHex(bytes count: Int) -> String {
    var generator = SystemRandomNumberGenerator()
    let digits = Array("0123456789abcdef")
    var text = ""
    for _ in 0..<count {
        let byte = UInt8.random(in: 0...255, using: &generator)
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0x0F)])
    }
    return text
}
