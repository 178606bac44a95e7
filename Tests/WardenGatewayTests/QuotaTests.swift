import Synchronization
import Testing
import WardenConfig
@testable import WardenGateway

@Suite("quotas per day and month, on an injected wall clock")
struct QuotaTests {
    /// 2027-03-31 23:00:00 UTC.
    static let lateMarch: Int64 = QuotaCalendar.days(year: 2027, month: 3, day: 31) * 86_400 + 23 * 3600

    final class WallClock: Sendable {
        private let time: Mutex<Int64>
        init(_ start: Int64) { time = Mutex(start) }
        var now: Int64 { time.withLock { $0 } }
        func advance(_ seconds: Int64) { time.withLock { $0 += seconds } }
    }

    func limits(_ clock: WallClock, day: Int? = nil, month: Int? = nil, zone: String = "UTC") -> GatewayLimits {
        var gateway = Deployment.Gateway(upstream: "http://127.0.0.1:8000")
        gateway.limits.requestsPerMinute = 1_000_000
        gateway.limits.burst = 1_000_000
        gateway.limits.tokensPerMinute = 1_000_000_000
        gateway.limits.tokensPerDay = day
        gateway.limits.tokensPerMonth = month
        gateway.limits.quotaTimeZone = zone
        return GatewayLimits(GatewayLimits.Defaults(gateway), clock: { .zero }, wallClock: { clock.now })
    }

    let key = KeyRecord(publicID: "k1", name: "team", secretHash: [], created: 0)

    @Test("calendar bounds: UTC and whole-hour offsets, across months, years and a leap February")
    func calendar() {
        let utc = QuotaCalendar()
        let march31 = QuotaCalendar.days(year: 2027, month: 3, day: 31) * 86_400
        #expect(utc.bounds(of: .day, at: Self.lateMarch) == (march31, march31 + 86_400))
        #expect(utc.bounds(of: .month, at: Self.lateMarch) == (QuotaCalendar.days(year: 2027, month: 3, day: 1) * 86_400, march31 + 86_400))
        // At +02:00, 23:00 UTC on the 31st is already 1 April.
        let berlin = QuotaCalendar(offset: UTCOffset("+02:00")!)
        #expect(berlin.bounds(of: .month, at: Self.lateMarch).start == march31 + 86_400 - 7200)
        let december = QuotaCalendar.days(year: 2027, month: 12, day: 15) * 86_400
        #expect(utc.bounds(of: .month, at: december).end == QuotaCalendar.days(year: 2028, month: 1, day: 1) * 86_400)
        let february = QuotaCalendar.days(year: 2028, month: 2, day: 10) * 86_400
        #expect(utc.bounds(of: .month, at: february).end - utc.bounds(of: .month, at: february).start == 29 * 86_400)
        #expect(QuotaCalendar.dateText(march31) == "2027-03-31")
        #expect(QuotaCalendar.parseDate("2027-03-31") == march31)
        #expect(QuotaCalendar.parseDate("2027-02-30") == nil)
        #expect(QuotaCalendar.civil(fromDays: -1) == (1969, 12, 31))
        #expect(UTCOffset("UTC-5")?.seconds == -5 * 3600)
        #expect(UTCOffset("+05:30") == nil)
        #expect(UTCOffset("Europe/Berlin") == nil)
        #expect(UTCOffset("utc")?.description == "UTC")
    }

    @Test("a daily quota refuses the request that would cross it (429, Retry-After = the reset) and admits after midnight")
    func dailyQuota() throws {
        let clock = WallClock(Self.lateMarch)
        let limits = limits(clock, day: 1000)
        let first = try limits.admit(key: key, model: "m", reserve: 600).get()
        #expect(first.rateLimits.fields.contains { $0 == ("x-ratelimit-remaining-tokens-day", "400") })
        #expect(first.rateLimits.fields.contains { $0 == ("x-ratelimit-reset-tokens-day", "3600s") })
        limits.finish(first, charged: 500)

        guard case .failure(let refusal) = limits.admit(key: key, model: "m", reserve: 501) else {
            Issue.record("501 more tokens cross the 1000-token daily quota")
            return
        }
        #expect(refusal.status == .tooManyRequests)
        #expect(refusal.decision == "rejected:quota_day")
        #expect(refusal.headers.contains { $0 == ("Retry-After", "3600") })
        #expect(refusal.body.contains("1000 tokens per day (UTC)"))
        // Exactly what is left still fits.
        limits.finish(try limits.admit(key: key, model: "m", reserve: 500).get(), charged: 500)
        #expect(throws: GatewayError.self) { try limits.admit(key: key, model: "m", reserve: 1).get() }

        clock.advance(3600)
        let nextDay = try limits.admit(key: key, model: "m", reserve: 1000).get()
        #expect(nextDay.rateLimits.fields.contains { $0 == ("x-ratelimit-remaining-tokens-day", "0") })
    }

    @Test("a monthly quota holds across days; a key's own quota overrides the default; a request still running counts")
    func monthlyQuota() throws {
        let clock = WallClock(QuotaCalendar.days(year: 2027, month: 3, day: 1) * 86_400)
        let limits = limits(clock, month: 10_000)
        var own = key
        own.tokensPerMonth = 2000
        let running = try limits.admit(key: own, model: "m", reserve: 1500).get()
        #expect(throws: GatewayError.self) { try limits.admit(key: own, model: "m", reserve: 600).get() }
        limits.finish(running, charged: 100)
        clock.advance(10 * 86_400)
        limits.finish(try limits.admit(key: own, model: "m", reserve: 1900).get(), charged: 1900)
        guard case .failure(let refusal) = limits.admit(key: own, model: "m", reserve: 1) else {
            Issue.record("the month's 2000 tokens are used")
            return
        }
        #expect(refusal.decision == "rejected:quota_month")
        #expect(refusal.headers.contains { $0 == ("Retry-After", String(QuotaCalendar.days(year: 2027, month: 4, day: 1) * 86_400 - clock.now)) })
        clock.advance(21 * 86_400)
        #expect((try? limits.admit(key: own, model: "m", reserve: 2000).get()) != nil, "April starts afresh")
    }

    @Test("counts seeded from the ledger after a restart refuse as before; keys without a quota get no quota headers")
    func seeded() throws {
        let clock = WallClock(Self.lateMarch)
        let limits = limits(clock, day: 1000)
        limits.seedQuotas(day: ["k1": 900], month: ["k1": 5000])
        #expect(throws: GatewayError.self) { try limits.admit(key: key, model: "m", reserve: 101).get() }
        #expect(limits.quotaUse([key]).map(\.used) == [900])
        let unlimited = self.limits(clock)
        let admitted = try unlimited.admit(key: key, model: "m", reserve: 10_000).get()
        #expect(!admitted.rateLimits.fields.contains { $0.0.hasSuffix("-day") || $0.0.hasSuffix("-month") })
    }
}
