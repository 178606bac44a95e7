import WardenConfig

/// Token quotas per key per calendar day and month. A request reserves its worst case at admission (as the
/// per-minute window does) and is settled at its end with what it was charged; the counts start from the usage
/// ledger when the gateway starts, so a restart forgets nothing the ledger wrote. A period's count starts at 0 when
/// the period turns; reservations still running are carried into it and settled there, where the ledger records
/// their charge too. Pure value type: time is passed in as seconds since the epoch.
struct QuotaBook: Sendable {
    struct Tally: Sendable, Equatable {
        /// The first second of the period counted.
        var start: Int64
        var used = 0
        var reserved = 0
    }

    /// A quota that would be crossed.
    struct Refusal: Sendable, Equatable {
        var period: QuotaCalendar.Period
        var limit: Int
        var used: Int
        /// Seconds until the period turns.
        var resetAfter: Int64
    }

    var calendar: QuotaCalendar
    private var tallies: [QuotaCalendar.Period: [String: Tally]] = [:]

    init(calendar: QuotaCalendar) { self.calendar = calendar }

    /// The key's count for `period` at `now` (a stale period reads as a fresh one, carrying its reservations).
    func tally(_ key: String, _ period: QuotaCalendar.Period, now: Int64) -> Tally {
        let start = calendar.bounds(of: period, at: now).start
        guard let tally = tallies[period]?[key] else { return Tally(start: start) }
        return tally.start == start ? tally : Tally(start: start, reserved: tally.reserved)
    }

    /// Whether `estimate` more tokens fit every quota of the key; with the rate-limit headers for each quota.
    func evaluate(key: String, quotas: [(QuotaCalendar.Period, Int)], estimate: Int, now: Int64) -> (refusal: Refusal?, headers: [(String, String)]) {
        var headers: [(String, String)] = [], refusal: Refusal?
        for (period, limit) in quotas {
            let tally = tally(key, period, now: now)
            let reset = calendar.bounds(of: period, at: now).end - now
            let counted = tally.used.saturatingAdded(tally.reserved)
            if refusal == nil, counted.saturatingAdded(estimate) > limit {
                refusal = Refusal(period: period, limit: limit, used: counted, resetAfter: reset)
            }
            let remaining = max(0, limit - counted - (refusal == nil ? estimate : 0))
            headers += GatewayLimits.headers("tokens-\(period.rawValue)", limit: limit, remaining: remaining, reset: .seconds(reset))
        }
        return (refusal, headers)
    }

    /// Reserves an admitted request's worst case.
    mutating func reserve(key: String, _ tokens: Int, now: Int64) {
        for period in QuotaCalendar.Period.allCases {
            var tally = tally(key, period, now: now)
            tally.reserved = tally.reserved.saturatingAdded(tokens)
            tallies[period, default: [:]][key] = tally
        }
    }

    /// Replaces a reservation by what the request was `charged`, in the period it ends in.
    mutating func settle(key: String, reserved: Int, charged: Int, now: Int64) {
        for period in QuotaCalendar.Period.allCases {
            var tally = tally(key, period, now: now)
            tally.reserved = max(0, tally.reserved - reserved)
            tally.used = tally.used.saturatingAdded(min(charged, TokenWindow.ceiling))
            tallies[period, default: [:]][key] = tally
        }
    }

    /// Sets what each key used in the current `period` (read from the ledger), keeping running reservations.
    mutating func seed(_ period: QuotaCalendar.Period, used: [String: Int], now: Int64) {
        let start = calendar.bounds(of: period, at: now).start
        var seeded: [String: Tally] = [:]
        for (key, tally) in tallies[period] ?? [:] where tally.reserved > 0 { seeded[key] = Tally(start: start, reserved: tally.reserved) }
        for (key, tokens) in used { seeded[key, default: Tally(start: start)].used = tokens }
        tallies[period] = seeded
    }
}
