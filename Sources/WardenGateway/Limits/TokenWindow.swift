/// Tokens per key per minute as a sliding window: the charges of the requests admitted in any 60 seconds never add
/// up to more than `perMinute`, except by what settlements add beyond a reservation (vLLM counted more prompt tokens
/// than the estimate), which is bounded by one reservation's prompt.
///
/// A request reserves its worst case at admission; when it ends, its entry is replaced by what it was charged.
/// Pure value type: time is passed in (a monotonic `Duration` since any fixed origin), so tests drive it exactly.
public struct TokenWindow: Sendable, Equatable {
    public static let length = Duration.seconds(60)

    public let perMinute: Int
    private var entries: [Entry] = []
    /// Entries before this index have left the window (compacted lazily).
    private var start = 0
    /// Sum of the entries in the window.
    private(set) public var charged = 0

    struct Entry: Sendable, Equatable {
        var id: UInt64
        var at: Duration
        var tokens: Int
    }

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

    /// Admits `tokens` under `id` (unique per window) when the window has room for them.
    public mutating func reserve(_ tokens: Int, id: UInt64, now: Duration) -> Decision {
        expire(now)
        guard tokens <= perMinute else { return .exceedsLimit }
        let excess = charged.saturatingAdded(tokens) - perMinute
        guard excess <= 0 else { return .rejected(retryAfter: wait(toFree: excess, now: now)) }
        entries.append(Entry(id: id, at: now, tokens: tokens))
        charged += tokens
        return .admitted(remaining: perMinute - charged, resetAfter: resetAfter(now))
    }

    /// Replaces the reservation `id` by what the request was charged. A request that outlived the window leaves only
    /// what it was charged beyond its reservation (`reserved`), counted from now.
    public mutating func settle(id: UInt64, reserved: Int, charged amount: Int, now: Duration) {
        expire(now)
        if let index = index(of: id) {
            charged = charged - entries[index].tokens + amount
            entries[index].tokens = amount
        } else if amount > reserved {
            entries.append(Entry(id: id, at: now, tokens: amount - reserved))
            charged = charged.saturatingAdded(amount - reserved)
        }
    }

    /// What `reserve` would report as remaining and reset now, without reserving.
    public mutating func peek(now: Duration) -> (remaining: Int, resetAfter: Duration) {
        expire(now)
        return (max(0, perMinute - charged), resetAfter(now))
    }

    private mutating func expire(_ now: Duration) {
        while start < entries.count, entries[start].at + Self.length <= now {
            charged -= entries[start].tokens
            start += 1
        }
        if start > 32, start * 2 > entries.count {
            entries.removeFirst(start)
            start = 0
        }
    }

    /// How long until the oldest entries leaving the window free `excess` tokens.
    private func wait(toFree excess: Int, now: Duration) -> Duration {
        var freed = 0
        for entry in entries[start...] {
            freed += entry.tokens
            if freed >= excess { return entry.at + Self.length - now }
        }
        return Self.length
    }

    /// When the window is empty again: the newest entry leaves it.
    private func resetAfter(_ now: Duration) -> Duration {
        guard let newest = entries.last, start < entries.count else { return .zero }
        return max(.zero, newest.at + Self.length - now)
    }

    /// Searched from the newest: requests mostly end in the order they were admitted, so it is found near the end.
    private func index(of id: UInt64) -> Int? {
        var index = entries.count - 1
        while index >= start {
            if entries[index].id == id { return index }
            index -= 1
        }
        return nil
    }
}
