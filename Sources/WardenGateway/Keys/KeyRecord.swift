/// One key as stored: everything but the secret, plus the HMAC of the secret.
public struct KeyRecord: Sendable, Equatable {
    public var publicID: String
    public var name: String
    public var secretHash: [UInt8]
    /// Seconds since the epoch.
    public var created: Int64
    public var expires: Int64?
    public var revoked: Int64?
    /// Models this key may use; empty means every served model.
    public var models: [String]
    public var requestsPerMinute: Int?
    public var tokensPerMinute: Int?
    public var concurrency: Int?

    /// Whether the key may be used at `now` (seconds since the epoch).
    public func isUsable(at now: Int64) -> Bool {
        revoked == nil && (expires.map { now < $0 } ?? true)
    }

    public func allows(model: String) -> Bool { models.isEmpty || models.contains(model) }
}
