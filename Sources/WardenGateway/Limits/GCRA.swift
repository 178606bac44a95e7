import WardenConfig

/// A request-rate limiter for one key: the generic cell rate algorithm (GCRA) with a rate and a burst.
///
/// Pure value type: time is passed in (a monotonic `Duration` since any fixed origin), so tests drive it exactly.
/// A full bucket admits `burst` requests at once, then one every `60 s / perMinute`.
public struct GCRA: Sendable, Equatable {
    public let perMinute: Int
    public let burst: Int
    /// Time one request "costs": 60 s / rate.
    public let interval: Duration
    /// How far ahead of now the theoretical arrival time may run: `interval × (burst − 1)`.
    public let tolerance: Duration
    private var theoreticalArrival: Duration

    public init(perMinute: Int, burst: Int, now: Duration) {
        // Brought into the ranges limits may take: `interval × (burst − 1)` overflows `Duration` past them.
        self.perMinute = min(max(1, perMinute), Deployment.Limits.Range.requestsPerMinute.upperBound)
        self.burst = min(max(1, burst), Deployment.Limits.Range.burst.upperBound)
        interval = .seconds(60) / self.perMinute
        tolerance = interval * (self.burst - 1)
        theoreticalArrival = now
    }

    public enum Decision: Sendable, Equatable {
        /// Admitted; `remaining` more requests would be admitted right now; the bucket is full again after `resetAfter`.
        case admitted(remaining: Int, resetAfter: Duration)
        /// Refused; the same request would be admitted after exactly `retryAfter`.
        case rejected(retryAfter: Duration)
    }

    public mutating func admit(now: Duration) -> Decision {
        let next = max(theoreticalArrival, now) + interval
        let ahead = next - now
        guard ahead <= tolerance + interval else {
            return .rejected(retryAfter: ahead - tolerance - interval)
        }
        theoreticalArrival = next
        return .admitted(remaining: Self.whole((tolerance + interval - ahead) / interval), resetAfter: ahead)
    }

    /// What `admit` would report as remaining and reset, without admitting (for headers on rejections).
    public func peek(now: Duration) -> (remaining: Int, resetAfter: Duration) {
        let ahead = max(theoreticalArrival, now) - now
        return (Self.whole((tolerance + interval - ahead) / interval), ahead)
    }

    static func whole(_ value: Double) -> Int { value >= 1 ? Int(min(value.rounded(.down), 1e15)) : 0 }
}

/// Seconds for `Retry-After`: rounded up, never 0 for a refusal.
func retryAfterSeconds(_ duration: Duration) -> Int {
    let (seconds, attoseconds) = duration.components
    return max(1, Int(seconds) + (attoseconds > 0 ? 1 : 0))
}
