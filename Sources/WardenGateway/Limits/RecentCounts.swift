/// Counts by name over the last few minutes, in one-minute buckets, on an injected clock: what `warden status`
/// shows as "refusals in the last 5 minutes" (Prometheus counters only say "since start").
struct RecentCounts {
    let minutes: Int
    private var buckets: [(minute: Int64, counts: [String: Int])] = []

    init(minutes: Int = 5) {
        self.minutes = max(1, minutes)
    }

    mutating func add(_ name: String, atSecond now: Int64) {
        let minute = now / 60
        if buckets.last?.minute != minute { buckets.append((minute, [:])) }
        buckets[buckets.count - 1].counts[name, default: 0] += 1
        buckets.removeAll { $0.minute <= minute - Int64(minutes) }
    }

    /// Totals over the window ending at `now`.
    func totals(atSecond now: Int64) -> [String: Int] {
        let oldest = now / 60 - Int64(minutes)
        return buckets.filter { $0.minute > oldest }.reduce(into: [:]) { totals, bucket in
            for (name, count) in bucket.counts { totals[name, default: 0] += count }
        }
    }
}
