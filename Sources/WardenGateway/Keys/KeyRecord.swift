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
    /// Requests admitted at once before the per-minute rate applies (GCRA burst); `nil`: the default, capped at the rate.
    public var burst: Int?
    /// Token quotas per calendar day and month; `nil`: the `gateway.limits` default.
    public var tokensPerDay: Int?
    public var tokensPerMonth: Int?

    public init(publicID: String, name: String, secretHash: [UInt8], created: Int64, expires: Int64? = nil, revoked: Int64? = nil,
                models: [String] = [], requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil, concurrency: Int? = nil, burst: Int? = nil,
                tokensPerDay: Int? = nil, tokensPerMonth: Int? = nil) {
        self.publicID = publicID
        self.name = name
        self.secretHash = secretHash
        self.created = created
        self.expires = expires
        self.revoked = revoked
        self.models = models
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.concurrency = concurrency
        self.burst = burst
        self.tokensPerDay = tokensPerDay
        self.tokensPerMonth = tokensPerMonth
    }

    /// Whether the key may be used at `now` (seconds since the epoch).
    public func isUsable(at now: Int64) -> Bool {
        revoked == nil && (expires.map { now < $0 } ?? true)
    }

    public func allows(model: String) -> Bool { models.isEmpty || models.contains(model) }
}
