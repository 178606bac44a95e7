/// Tokens per key per minute as a sliding window: the charges of the requests admitted in any 60 seconds never add
/// up to more than `perMinute`, except by what settlements add beyond a reservation (vLLM counted more prompt tokens
/// than the estimate), which is bounded by one reservation's prompt.
///
/// A request reserves its worst case at admission; when it ends, its reservation is replaced by what it was charged.
/// A request still running when its slot leaves the window keeps its reservation counted until it ends, so tokens a
/// long request generates late are never outside every window. Charges are kept in 100 ms slots (at most 601 per key,
/// whatever the request rate), and a slot leaves the window only when its last instant is 60 s old: the window errs
/// by up to 100 ms on the safe side.
/// Pure value type: time is passed in (a monotonic `Duration` since any fixed origin), so tests drive it exactly.
public struct TokenWindow: Sendable, Equatable {
    public static let length = Duration.seconds(60)
    public static let slotLength = Duration.milliseconds(100)

    public let perMinute: Int
    private var slots: [Slot] = []
    /// Slots before this index have left the window (compacted lazily).
    private var start = 0
    /// Sum of the slots in the window.
    private(set) public var charged = 0
    /// Reservations of requests still running whose slots have left the window.
    private(set) public var carried = 0

    struct Slot: Sendable, Equatable {
        var number: Int64
        var tokens: Int
        /// The part of `tokens` reserved by requests not yet settled.
        var unsettled: Int
    }

    /// What counts against the limit now.
    private var counted: Int { charged.saturatingAdded(carried) }

    public init(perMinute: Int) {
        self.perMinute = max(1, perMinute)
    }

    public enum Decision: Sendable, Equatable {
        case admitted(remaining: Int, resetAfter: Duration)
        /// The window holds too much now; the same reservation fits after exactly `retryAfter`.
        case rejected(retryAfter: Duration)
        /// The reservation alone is larger than the whole minute's budget: it can never be admitted.
        case exceedsLimit
    }

    /// Whether `tokens` fit now, without reserving them (`remaining` as if they were).
    public mutating func evaluate(_ tokens: Int, now: Duration) -> Decision {
        expire(now)
        guard tokens <= perMinute else { return .exceedsLimit }
        let excess = counted.saturatingAdded(tokens) - perMinute
        guard excess <= 0 else { return .rejected(retryAfter: wait(toFree: excess, now: now)) }
        return .admitted(remaining: perMinute - counted - tokens, resetAfter: Self.end(of: Self.slot(at: now)) + Self.length - now)
    }

    /// Reserves `tokens` at `now` (after `evaluate` admitted them).
    public mutating func record(_ tokens: Int, now: Duration) {
        add(tokens, unsettled: tokens, toSlot: Self.slot(at: now))
    }

    /// `evaluate`, and when admitted, `record`.
    public mutating func reserve(_ tokens: Int, now: Duration) -> Decision {
        let decision = evaluate(tokens, now: now)
        if case .admitted = decision { record(tokens, now: now) }
        return decision
    }

    /// Replaces a reservation made at `admittedAt` by what the request was charged. A request that outlived the
    /// window stops being carried and leaves only what it was charged beyond its reservation, counted from now.
    public mutating func settle(admittedAt: Duration, reserved: Int, charged amount: Int, now: Duration) {
        expire(now)
        // vLLM's counts are trusted, but no number may trap: far beyond any real request is as good as infinite.
        let amount = min(amount, Self.ceiling), reserved = min(reserved, Self.ceiling)
        // Clamped at 0: a request admitted before a reload replaced this window was never counted in it.
        if let index = index(ofSlot: Self.slot(at: admittedAt)) {
            let before = slots[index].tokens
            slots[index].tokens = max(0, before + amount - reserved)
            slots[index].unsettled = max(0, slots[index].unsettled - reserved)
            charged += slots[index].tokens - before
        } else {
            carried = max(0, carried - reserved)
            if amount > reserved { add(amount - reserved, unsettled: 0, toSlot: Self.slot(at: now)) }
        }
    }

    /// Token counts are clamped here before any arithmetic (2^48: far beyond any request).
    static let ceiling = 1 << 48

    /// What `reserve` would report as remaining and reset now, without reserving.
    public mutating func peek(now: Duration) -> (remaining: Int, resetAfter: Duration) {
        expire(now)
        guard let newest = slots.last, start < slots.count else { return (max(0, perMinute - counted), .zero) }
        return (max(0, perMinute - counted), max(.zero, Self.end(of: newest.number) + Self.length - now))
    }

    private mutating func add(_ tokens: Int, unsettled: Int, toSlot number: Int64) {
        let tokens = min(tokens, Self.ceiling)
        if let last = slots.last, start < slots.count, last.number == number {
            slots[slots.count - 1].tokens += tokens
            slots[slots.count - 1].unsettled += min(unsettled, Self.ceiling)
        } else {
            slots.append(Slot(number: number, tokens: tokens, unsettled: min(unsettled, Self.ceiling)))
        }
        charged += tokens
    }

    private mutating func expire(_ now: Duration) {
        while start < slots.count, Self.end(of: slots[start].number) + Self.length <= now {
            charged -= slots[start].tokens
            carried += slots[start].unsettled
            start += 1
        }
        if start > 32, start * 2 > slots.count {
            slots.removeFirst(start)
            start = 0
        }
    }

    /// How long until the oldest slots leaving the window free `excess` tokens.
    private func wait(toFree excess: Int, now: Duration) -> Duration {
        var freed = 0
        for slot in slots[start...] {
            freed += slot.tokens - slot.unsettled  // what is still running stays counted
            if freed >= excess { return Self.end(of: slot.number) + Self.length - now }
        }
        // Only requests still running hold the rest: the earliest they can free it is unknown; a minute is a fair guess.
        return Self.length
    }

    /// Slots are in increasing order: a binary search.
    private func index(ofSlot number: Int64) -> Int? {
        var low = start, high = slots.count
        while low < high {
            let middle = (low + high) / 2
            if slots[middle].number < number { low = middle + 1 } else { high = middle }
        }
        return low < slots.count && slots[low].number == number ? low : nil
    }

    static func slot(at time: Duration) -> Int64 {
        let (seconds, attoseconds) = time.components
        return seconds * 10 + attoseconds / 100_000_000_000_000_000
    }

    /// The first instant after slot `number`: `slotLength × (number + 1)`, in whole seconds and tenths (the generic
    /// `Duration * Int` converts through 128-bit integers on every call, and this runs per slot per request).
    static func end(of number: Int64) -> Duration {
        let next = number + 1
        return Duration(secondsComponent: next / 10, attosecondsComponent: next % 10 * 100_000_000_000_000_000)
    }
}
