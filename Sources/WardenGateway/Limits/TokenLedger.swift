/// Tokens per key per minute: a bucket of `perMinute` tokens refilled continuously.
///
/// A request reserves its estimate up front (prompt estimate + `max_tokens` × `n`) and settles with vLLM's real
/// usage when it ends — refunding what it did not use, or charging what it used beyond the estimate. A request is
/// admitted when the bucket holds its estimate (or a full bucket, for estimates above the capacity), so the bucket
/// can run into debt by at most one reservation's overrun.
public struct TokenLedger: Sendable, Equatable {
    public let perMinute: Int
    private(set) public var available: Double
    private var updated: Duration

    public init(perMinute: Int, now: Duration) {
        self.perMinute = max(1, perMinute)
        available = Double(self.perMinute)
        updated = now
    }

    private var perSecond: Double { Double(perMinute) / 60 }

    private mutating func refill(_ now: Duration) {
        guard now > updated else { return }
        available = min(Double(perMinute), available + (now - updated) / .seconds(1) * perSecond)
        updated = now
    }

    public enum Decision: Sendable, Equatable {
        case admitted(remaining: Int, resetAfter: Duration)
        case rejected(retryAfter: Duration)
    }

    public mutating func reserve(_ estimate: Int, now: Duration) -> Decision {
        refill(now)
        let needed = Double(min(estimate, perMinute))
        guard available >= needed else {
            return .rejected(retryAfter: .seconds((needed - available) / perSecond))
        }
        available -= Double(estimate)
        return .admitted(remaining: max(0, Int(available)), resetAfter: resetAfter)
    }

    /// Replaces a reservation by what was really used (tokens generated so far, for an aborted stream).
    public mutating func settle(reserved: Int, used: Int, now: Duration) {
        refill(now)
        available = min(Double(perMinute), available + Double(reserved - used))
    }

    public mutating func peek(now: Duration) -> (remaining: Int, resetAfter: Duration) {
        refill(now)
        return (max(0, Int(available)), resetAfter)
    }

    private var resetAfter: Duration { .seconds(max(0, Double(perMinute) - available) / perSecond) }
}
