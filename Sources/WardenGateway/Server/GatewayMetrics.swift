import NIOConcurrencyHelpers
import Prometheus
import WardenNIOSupport

/// The gateway's Prometheus metrics. Label values are bounded: routes from the allow-list (else `other`),
/// HTTP status codes, and key public ids (never secrets, prompts or client addresses).
final class GatewayMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    // Handles keyed by their label values (no label text built per request).
    private let requestCounters = NIOLockedValueBox<[RequestLabels: Counter]>([:])
    private let rejectionCounters = NIOLockedValueBox<[String: Counter]>([:])
    private let tokenCounters = NIOLockedValueBox<[String: (input: Counter, output: Counter)]>([:])
    /// Refusals of the last minutes, for `warden status`.
    private let recentRejections = NIOLockedValueBox(RecentCounts())
    private let quotaGauges = NIOLockedValueBox<[String: Gauge]>([:])
    let upstreamLatency: DurationHistogram
    let overhead: DurationHistogram
    let timeToFirstToken: DurationHistogram
    let inFlight: Gauge
    let bansActive: Gauge
    let upstreamReady: Gauge
    let ledgerWriteFailures: Counter

    init() {
        let latencyBuckets: [Duration] = [.milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                                          .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300)]
        let overheadBuckets: [Duration] = [.microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
                                           .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(50)]
        upstreamLatency = registry.makeDurationHistogram(name: "warden_upstream_latency_seconds", buckets: latencyBuckets,
                                                         help: "Time from forwarding a request to vLLM's last byte.")
        overhead = registry.makeDurationHistogram(name: "warden_gateway_overhead_seconds", buckets: overheadBuckets,
                                                  help: "Time the gateway itself added: total minus time waiting on vLLM.")
        timeToFirstToken = registry.makeDurationHistogram(name: "warden_time_to_first_token_seconds", buckets: latencyBuckets,
                                                          help: "Time from request to the first byte of the response body.")
        inFlight = registry.makeGauge(name: "warden_requests_in_flight", help: "Requests being proxied now.")
        bansActive = registry.makeGauge(name: "warden_bans_active", help: "Address groups banned now.")
        upstreamReady = registry.makeGauge(name: "warden_upstream_ready", help: "1 when vLLM answers /health and takes the gateway's key, else 0.")
        ledgerWriteFailures = registry.makeCounter(name: "warden_ledger_write_failures_total",
                                                   help: "Usage-ledger writes that failed (the counts are kept and retried).")
    }

    private struct RequestLabels: Hashable {
        var route: String
        var status: Int
        var key: String
    }

    func countRequest(route: String, status: Int, key: String) {
        let counter = requestCounters.withLockedValue { counters in
            let labels = RequestLabels(route: route, status: status, key: key)
            if let existing = counters[labels] { return existing }
            let made = registry.makeCounter(name: "warden_requests_total", labels: [("route", route), ("status", String(status)), ("key", key)],
                                            help: "Requests answered, by route, status and key id.")
            counters[labels] = made
            return made
        }
        counter.increment()
    }

    func countRejection(_ reason: String) {
        recentRejections.withLockedValue { $0.add(reason, atSecond: Int64(epochSeconds())) }
        let counter = rejectionCounters.withLockedValue { counters in
            if let existing = counters[reason] { return existing }
            let made = registry.makeCounter(name: "warden_rejections_total", labels: [("reason", reason)],
                                            help: "Requests the gateway refused itself, by reason.")
            counters[reason] = made
            return made
        }
        counter.increment()
    }

    func countTokens(key: String, prompt: Int, completion: Int) {
        guard prompt > 0 || completion > 0 else { return }
        let counters = tokenCounters.withLockedValue { counters in
            if let existing = counters[key] { return existing }
            func make(_ direction: String) -> Counter {
                registry.makeCounter(name: "warden_tokens_total", labels: [("key", key), ("direction", direction)],
                                     help: "Tokens reported by vLLM, by key id and direction.")
            }
            let made = (input: make("in"), output: make("out"))
            counters[key] = made
            return made
        }
        if prompt > 0 { counters.input.increment(by: Int64(prompt)) }
        if completion > 0 { counters.output.increment(by: Int64(completion)) }
    }

    /// Refusals by reason over the last ``RecentCounts/minutes`` minutes.
    func recentRejectionTotals() -> (minutes: Int, totals: [String: Int]) {
        recentRejections.withLockedValue { ($0.minutes, $0.totals(atSecond: Int64(epochSeconds()))) }
    }

    /// Share of a key's day or month token quota used (only keys with a quota have one).
    func setQuotaUsed(key: String, period: String, ratio: Double) {
        let gauge = quotaGauges.withLockedValue { gauges in
            if let existing = gauges["\(key)|\(period)"] { return existing }
            let made = registry.makeGauge(name: "warden_quota_used_ratio", labels: [("key", key), ("period", period)],
                                          help: "Share of the key's token quota used in the current day or month (1 = exhausted).")
            gauges["\(key)|\(period)"] = made
            return made
        }
        gauge.set(ratio)
    }

    func exposition() -> String { registry.emitToString() }
}
