import Synchronization
import WardenConfig
import WardenNIOSupport

/// The limit policies wired together for the gateway: per-key request GCRA, token window and day/month quotas,
/// concurrency leases, and the ban table, behind one lock. Each admission decides on copies of the value types and commits only when
/// every limit admits, so a request refused by one limit never consumes another. Time comes from an injected
/// clock (and quotas from an injected wall clock), so every decision can be driven exactly in tests.
final class GatewayLimits: Sendable {
    struct Defaults: Sendable {
        var enabled: Bool
        var requestsPerMinute: Int
        var burst: Int
        var tokensPerMinute: Int
        var concurrency: Int
        var globalConcurrency: Int
        var modelConcurrency: Int?
        var leaseTimeout: Duration
        var defaultMaxTokens: Int
        var tokensPerDay: Int?
        var tokensPerMonth: Int?
        var quotaCalendar: QuotaCalendar
        var bansEnabled: Bool
        var banPolicy: BanTable.Policy

        init(_ gateway: Deployment.Gateway) {
            let limits = gateway.limits, bans = gateway.bans
            enabled = limits.enabled
            requestsPerMinute = limits.requestsPerMinute
            burst = limits.burst
            tokensPerMinute = limits.tokensPerMinute
            concurrency = limits.concurrency
            globalConcurrency = limits.globalConcurrency
            modelConcurrency = limits.modelConcurrency
            leaseTimeout = .seconds(limits.leaseTimeout)
            defaultMaxTokens = limits.defaultMaxTokens
            tokensPerDay = limits.tokensPerDay
            tokensPerMonth = limits.tokensPerMonth
            quotaCalendar = QuotaCalendar(offset: UTCOffset(limits.quotaTimeZone) ?? .utc)
            bansEnabled = bans.enabled
            banPolicy = BanTable.Policy(maxFailures: bans.maxFailures, findTime: .seconds(bans.findTime), banTime: .seconds(bans.banTime),
                                        factor: bans.incrementFactor, maxBanTime: .seconds(bans.maxBanTime),
                                        ignore: bans.ignoreNetworks.compactMap(IPNetwork.init))
        }
    }

    /// A key's per-minute windows, in one entry: one lookup per admission.
    private struct KeyWindows {
        var requests: GCRA
        var tokens: TokenWindow
    }

    private struct State {
        var defaults: Defaults
        var windows: [String: KeyWindows] = [:]
        var leases = LeaseTable()
        var bans: BanTable
        var quotas: QuotaBook
    }

    /// What an admitted request holds until it ends.
    struct Admission: Sendable {
        var key: String
        /// When its tokens were reserved: where in the key's token window they are settled.
        var admittedAt: Duration
        var leaseID: UInt64?
        var reservedTokens: Int
        /// The `x-ratelimit-*` fields of its answer.
        var rateLimits: RateLimitFields
    }

    private let state: Mutex<State>
    private let clock: @Sendable () -> Duration
    private let wallClock: @Sendable () -> Int64

    /// `clock` is monotonic time since any fixed origin; by default, since the gateway started. `wallClock` is
    /// seconds since the epoch, for quota days and months and persisted bans.
    init(_ defaults: Defaults, clock: (@Sendable () -> Duration)? = nil, wallClock: (@Sendable () -> Int64)? = nil) {
        state = Mutex(State(defaults: defaults, bans: BanTable(policy: defaults.banPolicy), quotas: QuotaBook(calendar: defaults.quotaCalendar)))
        let origin = ContinuousClock.now
        self.clock = clock ?? { ContinuousClock.now - origin }
        self.wallClock = wallClock ?? { Int64(epochSeconds()) }
    }

    /// The clock every policy runs on.
    var now: Duration { clock() }
    /// Seconds since the epoch, as quotas see them.
    var epoch: Int64 { wallClock() }

    var defaults: Defaults { state.withLock { $0.defaults } }

    /// New defaults on reload; per-key state whose limits changed starts afresh on its next request.
    func update(_ defaults: Defaults) {
        state.withLock { state in
            state.defaults = defaults
            state.bans.policy = defaults.banPolicy
            state.quotas.calendar = defaults.quotaCalendar
        }
    }

    // MARK: - Bans

    func banRemaining(_ address: IPAddress) -> Duration? {
        let now = self.now
        return state.withLock { $0.defaults.bansEnabled ? $0.bans.banRemaining(address, now: now) : nil }
    }

    /// Counts a failed authentication; returns the ban length when it starts a ban.
    func recordAuthFailure(_ address: IPAddress) -> Duration? {
        let now = self.now
        return state.withLock { $0.defaults.bansEnabled ? $0.bans.recordFailure(address, now: now) : nil }
    }

    func activeBanCount() -> Int {
        let now = self.now
        return state.withLock { $0.bans.activeBanCount(now: now) }
    }

    func activeBans() -> [BanTable.Ban] {
        let now = self.now
        return state.withLock { $0.bans.activeBans(now: now) }
    }

    func unban(_ address: IPAddress) -> Bool {
        let now = self.now
        return state.withLock { $0.bans.unban(address, now: now) }
    }

    /// The running bans to persist (the longest `limit`), when they changed since `generation`.
    func bansToStore(after generation: Int, limit: Int = 10_000) -> (generation: Int, bans: [StoredBan])? {
        let now = self.now, epoch = self.epoch
        return state.withLock { state in
            state.bans.generation == generation ? nil : (state.bans.generation, state.bans.stored(now: now, epoch: epoch, limit: limit))
        }
    }

    func restoreBans(_ bans: [StoredBan]) {
        let now = self.now, epoch = self.epoch
        state.withLock { $0.bans.restore(bans, now: now, epoch: epoch) }
    }

    // MARK: - Quotas

    /// Where the current quota day and month began (seconds since the epoch): the ledger is summed from there.
    var quotaPeriodStarts: (day: Int64, month: Int64) {
        let epoch = self.epoch
        let calendar = state.withLock { $0.quotas.calendar }
        return (calendar.bounds(of: .day, at: epoch).start, calendar.bounds(of: .month, at: epoch).start)
    }

    /// Sets each key's use of the current day and month, as the ledger has it.
    func seedQuotas(day: [String: Int], month: [String: Int]) {
        let epoch = self.epoch
        state.withLock { state in
            state.quotas.seed(.day, used: day, now: epoch)
            state.quotas.seed(.month, used: month, now: epoch)
        }
    }

    /// Each quota that applies to a key, with what is used of it now (for the quota gauges).
    func quotaUse(_ keys: [KeyRecord]) -> [(key: String, period: QuotaCalendar.Period, used: Int, limit: Int)] {
        let epoch = self.epoch
        return state.withLock { state in
            keys.flatMap { key in
                Self.quotas(key, state.defaults).map { period, limit in
                    (key.publicID, period, state.quotas.tally(key.publicID, period, now: epoch).used, limit)
                }
            }
        }
    }

    private static func quotas(_ key: KeyRecord, _ defaults: Defaults) -> [(QuotaCalendar.Period, Int)] {
        [(.day, key.tokensPerDay ?? defaults.tokensPerDay), (.month, key.tokensPerMonth ?? defaults.tokensPerMonth)].compactMap { period, limit in
            limit.map { (period, $0) }
        }
    }

    // MARK: - Admission

    /// Admits a request that may cost up to `reserve` tokens, or says which limit refuses it. Nothing is committed
    /// unless every limit admits; the token window is decided in place (copying it would copy every slot).
    func admit(key: KeyRecord, model: String, reserve estimate: Int) -> Result<Admission, GatewayError> {
        let now = self.now, epoch = self.epoch
        return state.withLock { state -> Result<Admission, GatewayError> in
            let defaults = state.defaults
            guard defaults.enabled else {
                return .success(Admission(key: key.publicID, admittedAt: now, leaseID: nil, reservedTokens: 0, rateLimits: RateLimitFields()))
            }
            let rpm = key.requestsPerMinute ?? defaults.requestsPerMinute
            // The burst never exceeds the rate: `--rpm 3` admits 3 at once, not the default burst of 10.
            let burst = key.burst ?? min(defaults.burst, rpm)
            let tpm = key.tokensPerMinute ?? defaults.tokensPerMinute
            return Self.admit(key, model: model, estimate: estimate, rpm: rpm, burst: burst, tpm: tpm, defaults: defaults, now: now, epoch: epoch,
                              windows: &state.windows[key.publicID, default: KeyWindows(requests: GCRA(perMinute: rpm, burst: burst, now: now),
                                                                                        tokens: TokenWindow(perMinute: tpm))],
                              leases: &state.leases, quotas: &state.quotas)
        }
    }

    private static func admit(_ key: KeyRecord, model: String, estimate: Int, rpm: Int, burst: Int, tpm: Int, defaults: Defaults, now: Duration,
                              epoch: Int64, windows: inout KeyWindows, leases: inout LeaseTable, quotas: inout QuotaBook) -> Result<Admission, GatewayError> {
        // A key whose limits changed on reload starts afresh.
        if windows.requests.perMinute != rpm || windows.requests.burst != burst { windows.requests = GCRA(perMinute: rpm, burst: burst, now: now) }
        if windows.tokens.perMinute != tpm { windows.tokens = TokenWindow(perMinute: tpm) }
        var requests = windows.requests
        let requestDecision = requests.admit(now: now)
        let tokenDecision = windows.tokens.evaluate(estimate, now: now)
        var fields = RateLimitFields()
        let requestPeek = requests.peek(now: now)
        fields.requests = .init(limit: rpm, remaining: requestPeek.remaining, reset: requestPeek.resetAfter)
        switch tokenDecision {
        case .admitted(let remaining, let reset): fields.tokens = .init(limit: tpm, remaining: remaining, reset: reset)
        case .rejected, .exceedsLimit:
            let tokenPeek = windows.tokens.peek(now: now)
            fields.tokens = .init(limit: tpm, remaining: tokenPeek.remaining, reset: tokenPeek.resetAfter)
        }

        if case .exceedsLimit = tokenDecision {
            return .failure(.exceedsTokenLimit(worstCase: estimate, perMinute: tpm, headers: fields.fields))
        }
        if case .rejected(let wait) = requestDecision {
            return .failure(.rateLimited("requests", limit: "\(rpm) per minute", retryAfter: wait, headers: fields.fields))
        }
        if case .rejected(let wait) = tokenDecision {
            return .failure(.rateLimited("tokens", limit: "\(tpm) per minute (this request reserves \(estimate))", retryAfter: wait, headers: fields.fields))
        }
        if let refusal = quotas.evaluate(key: key.publicID, day: key.tokensPerDay ?? defaults.tokensPerDay, month: key.tokensPerMonth ?? defaults.tokensPerMonth,
                                         estimate: estimate, now: epoch, fields: &fields) {
            return .failure(.quotaExceeded(refusal, reserve: estimate, zone: quotas.calendar.offset, headers: fields.fields))
        }
        let lease = leases.acquire(key: key.publicID, model: model, keyLimit: key.concurrency ?? defaults.concurrency,
                                   modelLimit: defaults.modelConcurrency, globalLimit: defaults.globalConcurrency, now: now)
        switch lease {
        case .failure(let refusal):
            return .failure(.concurrencyLimited(refusal, headers: fields.fields))
        case .success(let leaseID):
            windows.requests = requests
            windows.tokens.record(estimate, now: now)
            quotas.reserve(key: key.publicID, estimate, now: epoch)
            return .success(Admission(key: key.publicID, admittedAt: now, leaseID: leaseID, reservedTokens: estimate, rateLimits: fields))
        }
    }

    /// Ends an admission: releases its lease and replaces its reservation by what it is `charged`
    /// (``Settlement/charge(reserved:ending:)``).
    func finish(_ admission: Admission, charged: Int) {
        let now = self.now, epoch = self.epoch
        state.withLock { state in
            if let id = admission.leaseID { state.leases.release(id) }
            state.quotas.settle(key: admission.key, reserved: admission.reservedTokens, charged: charged, now: epoch)
            if admission.reservedTokens > 0 {
                state.windows[admission.key]?.tokens.settle(admittedAt: admission.admittedAt, reserved: admission.reservedTokens, charged: charged, now: now)
            }
        }
    }

    /// Reclaims leases held longer than the lease timeout; returns how many.
    @discardableResult
    func expireLeases() -> Int {
        let now = self.now
        return state.withLock { $0.leases.expire(timeout: $0.defaults.leaseTimeout, now: now).count }
    }

    var leasesHeld: Int { state.withLock { $0.leases.total } }
}

extension GatewayError {
    static func rateLimited(_ kind: String, limit: String, retryAfter: Duration, headers: [(String, String)]) -> GatewayError {
        let seconds = retryAfterSeconds(retryAfter)
        return GatewayError(status: .tooManyRequests, type: "rate_limit_error", code: "rate_limit_exceeded",
                            message: "Rate limit reached for \(kind): \(limit). Retry after \(seconds) s.",
                            headers: headers + [("Retry-After", String(seconds))], decision: "rejected:rate_\(kind)")
    }

    /// The request's worst case is more than the key may use in a whole minute: it could never be admitted.
    static func exceedsTokenLimit(worstCase: Int, perMinute: Int, headers: [(String, String)]) -> GatewayError {
        GatewayError(status: .badRequest, type: "invalid_request_error", code: "token_limit_exceeded",
                     message: "This request may use up to \(worstCase) tokens (prompt estimate, in which each image, audio or video part "
                         + "counts \(InferenceRequest.mediaPartTokens) unless the deployment sets vllm.max_model_len, + max_tokens × choices × prompts), "
                         + "more than this key's limit of \(perMinute) tokens per minute by \(worstCase.saturatingAdded(-perMinute)). "
                         + "Lower max_tokens, n, the number of prompts or of media parts.",
                     headers: headers, decision: "rejected:token_limit_exceeded")
    }

    /// A day or month quota would be crossed: 429 until the period turns (`Retry-After` is the reset).
    static func quotaExceeded(_ refusal: QuotaBook.Refusal, reserve: Int, zone: UTCOffset, headers: [(String, String)]) -> GatewayError {
        let period = refusal.period.rawValue
        let never = reserve > refusal.limit ? " This request alone reserves more than the whole quota: lower max_tokens, n or the number of prompts." : ""
        return GatewayError(status: .tooManyRequests, type: "rate_limit_error", code: "quota_exceeded",
                            message: "Token quota reached for this \(period): \(refusal.limit) tokens per \(period) (\(zone)); \(refusal.used) used or reserved, "
                                + "and this request reserves up to \(reserve). The quota resets in \(refusal.resetAfter) s.\(never)",
                            headers: headers + [("Retry-After", String(refusal.resetAfter))], decision: "rejected:quota_\(period)")
    }

    static func concurrencyLimited(_ refusal: LeaseRefusal, headers: [(String, String)]) -> GatewayError {
        GatewayError(status: .tooManyRequests, type: "rate_limit_error", code: "concurrency_limit_exceeded",
                     message: "Too many requests in flight (\(refusal.scope.rawValue) limit \(refusal.limit)). Retry when one finishes.",
                     headers: headers + [("Retry-After", "1")], decision: "rejected:concurrency_\(refusal.scope.rawValue)")
    }

    static func banned(retryAfter: Duration) -> GatewayError {
        let seconds = retryAfterSeconds(retryAfter)
        return GatewayError(status: .forbidden, type: "permission_error", code: "address_banned",
                            message: "Too many failed authentication attempts from this address. Retry after \(seconds) s.",
                            headers: [("Retry-After", String(seconds))], decision: "rejected:banned")
    }
}
