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

    var calendar: QuotaCalendar {
        didSet { current = nil }
    }
    /// Every key's day and month, in one entry: one lookup per request rather than one per period and step.
    private var tallies: [String: (day: Tally, month: Tally)] = [:]
    /// The current day and month, computed when the clock leaves them rather than on every request.
    private var current: (day: Range<Int64>, month: Range<Int64>)?

    init(calendar: QuotaCalendar) { self.calendar = calendar }

    /// The key's count for `period` at `now` (a stale period reads as a fresh one, carrying its reservations).
    func tally(_ key: String, _ period: QuotaCalendar.Period, now: Int64) -> Tally {
        let start = calendar.bounds(of: period, at: now).start
        guard let entry = tallies[key] else { return Tally(start: start) }
        return Self.current(period == .day ? entry.day : entry.month, start: start)
    }

    /// Whether `estimate` more tokens fit the key's quotas (nil: none for that period); sets their rate-limit fields.
    mutating func evaluate(key: String, day: Int?, month: Int?, estimate: Int, now: Int64, fields: inout RateLimitFields) -> Refusal? {
        guard day != nil || month != nil else { return nil }
        let periods = periods(at: now)
        let entry = tallies[key]
        var refusal: Refusal?
        func check(_ period: QuotaCalendar.Period, _ limit: Int, _ stored: Tally?, _ bounds: Range<Int64>) -> RateLimitFields.Window {
            let tally = stored.map { Self.current($0, start: bounds.lowerBound) } ?? Tally(start: bounds.lowerBound)
            let counted = tally.used.saturatingAdded(tally.reserved)
            if refusal == nil, counted.saturatingAdded(estimate) > limit {
                refusal = Refusal(period: period, limit: limit, used: counted, resetAfter: bounds.upperBound - now)
            }
            return .init(limit: limit, remaining: max(0, limit - counted - (refusal == nil ? estimate : 0)), reset: .seconds(bounds.upperBound - now))
        }
        if let day { fields.tokensDay = check(.day, day, entry?.day, periods.day) }
        if let month { fields.tokensMonth = check(.month, month, entry?.month, periods.month) }
        return refusal
    }

    /// Reserves an admitted request's worst case.
    mutating func reserve(key: String, _ tokens: Int, now: Int64) {
        update(key, now: now) { $0.reserved = $0.reserved.saturatingAdded(tokens) }
    }

    /// Replaces a reservation by what the request was `charged`, in the period it ends in.
    mutating func settle(key: String, reserved: Int, charged: Int, now: Int64) {
        update(key, now: now) { tally in
            tally.reserved = max(0, tally.reserved - reserved)
            tally.used = tally.used.saturatingAdded(min(charged, TokenWindow.ceiling))
        }
    }

    /// Sets what each key used in the current `period` (read from the ledger), keeping running reservations.
    mutating func seed(_ period: QuotaCalendar.Period, used: [String: Int], now: Int64) {
        let start = calendar.bounds(of: period, at: now).start
        for key in Set(tallies.keys).union(used.keys) {
            var entry = tallies[key] ?? (Tally(start: start), Tally(start: start))
            let seeded = Tally(start: start, used: used[key] ?? 0, reserved: period == .day ? entry.day.reserved : entry.month.reserved)
            if period == .day { entry.day = seeded } else { entry.month = seeded }
            tallies[key] = entry
        }
    }

    /// Both of the key's tallies, brought to the current periods, changed in place.
    private mutating func update(_ key: String, now: Int64, _ change: (inout Tally) -> Void) {
        let periods = periods(at: now)
        let day = periods.day.lowerBound, month = periods.month.lowerBound
        Self.advance(&tallies[key, default: (Tally(start: day), Tally(start: month))], day: day, month: month, change)
    }

    private static func advance(_ entry: inout (day: Tally, month: Tally), day: Int64, month: Int64, _ change: (inout Tally) -> Void) {
        entry.day = current(entry.day, start: day)
        entry.month = current(entry.month, start: month)
        change(&entry.day)
        change(&entry.month)
    }

    private mutating func periods(at now: Int64) -> (day: Range<Int64>, month: Range<Int64>) {
        if let current, current.day.contains(now), current.month.contains(now) { return current }
        let day = calendar.bounds(of: .day, at: now), month = calendar.bounds(of: .month, at: now)
        let periods = (day: day.start..<day.end, month: month.start..<month.end)
        current = periods
        return periods
    }

    /// A tally of an earlier period reads as a fresh one that carries its reservations.
    private static func current(_ tally: Tally, start: Int64) -> Tally {
        tally.start == start ? tally : Tally(start: start, reserved: tally.reserved)
    }
}
