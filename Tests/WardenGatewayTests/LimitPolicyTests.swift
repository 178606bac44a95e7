import Testing
import WardenConfig
@testable import WardenGateway

@Suite("limit policies with an injected clock")
struct LimitPolicyTests {
    @Test("GCRA: a full burst at once, then one request per interval")
    func gcraBurstAndRate() {
        var limiter = GCRA(perMinute: 60, burst: 10, now: .zero)
        for index in 0..<10 {
            let result1 = limiter.admit(now: .zero)
            #expect(result1 == .admitted(remaining: 9 - index, resetAfter: .seconds(index + 1)))
        }
        let result2 = limiter.admit(now: .zero)
        #expect(result2 == .rejected(retryAfter: .seconds(1)))
        let result3 = limiter.admit(now: .milliseconds(999))
        #expect(result3 == .rejected(retryAfter: .milliseconds(1)))
        let result4 = limiter.admit(now: .seconds(1))
        #expect(result4 == .admitted(remaining: 0, resetAfter: .seconds(10)))
        let result5 = limiter.admit(now: .seconds(1.5))
        #expect(result5 == .rejected(retryAfter: .milliseconds(500)))
    }

    @Test("GCRA: the steady rate over a long run equals burst + rate × elapsed")
    func gcraSteadyRate() {
        var limiter = GCRA(perMinute: 120, burst: 5, now: .zero)
        var admitted = 0
        for step in 0...(60 * 100) {
            if case .admitted = limiter.admit(now: .milliseconds(step * 10)) { admitted += 1 }
        }
        #expect(admitted == 5 + 120)
    }

    @Test("GCRA: Retry-After is exact, rounded up to whole seconds in the header")
    func gcraRetryAfter() {
        var limiter = GCRA(perMinute: 7, burst: 1, now: .zero)
        let result6 = limiter.admit(now: .zero)
        #expect(result6 == .admitted(remaining: 0, resetAfter: .seconds(60) / 7))
        guard case .rejected(let wait) = limiter.admit(now: .seconds(3)) else { Issue.record("expected a refusal"); return }
        #expect(wait == .seconds(60) / 7 - .seconds(3))
        #expect(retryAfterSeconds(wait) == 6)
        let result7 = limiter.admit(now: .seconds(3) + wait)
        #expect(result7 == .admitted(remaining: 0, resetAfter: .seconds(60) / 7))
        #expect(retryAfterSeconds(.milliseconds(1)) == 1)
    }

    @Test("tokens: reserve, refund the unused part, charge an overrun; refills over a minute")
    func tokenLedger() {
        var ledger = TokenLedger(perMinute: 6000, now: .zero)
        let result8 = ledger.reserve(4000, now: .zero)
        #expect(result8 == .admitted(remaining: 2000, resetAfter: .seconds(40)))
        guard case .rejected(let wait) = ledger.reserve(3000, now: .zero) else { Issue.record("expected a refusal"); return }
        #expect(wait == .seconds(10))
        ledger.settle(reserved: 4000, used: 1000, now: .zero)
        #expect(ledger.available == 5000)
        let result9 = ledger.reserve(3000, now: .zero)
        #expect(result9 == .admitted(remaining: 2000, resetAfter: .seconds(40)))
        ledger.settle(reserved: 3000, used: 4500, now: .zero)
        #expect(ledger.available == 500)
        let result10 = ledger.peek(now: .seconds(30)).remaining
        #expect(result10 == 3500)
        let result11 = ledger.peek(now: .seconds(600)).remaining
        #expect(result11 == 6000)
    }

    @Test("tokens: an estimate above the capacity waits for a full bucket, so debt is bounded by one reservation")
    func tokenLedgerOversizedRequest() {
        var ledger = TokenLedger(perMinute: 1000, now: .zero)
        let result12 = ledger.reserve(1500, now: .zero)
        #expect(result12 == .admitted(remaining: 0, resetAfter: .seconds(90)))
        #expect(ledger.available == -500)
        guard case .rejected = ledger.reserve(1, now: .seconds(1)) else { Issue.record("expected a refusal while in debt"); return }
        ledger.settle(reserved: 1500, used: 200, now: .seconds(1))
        let result13 = ledger.peek(now: .seconds(1)).remaining
        #expect(result13 == 816)
    }

    @Test("leases: per-key, per-model and global limits; each lease releases once; timeouts reclaim")
    func leases() {
        var table = LeaseTable()
        let first = table.acquire(key: "a", model: "m", keyLimit: 2, modelLimit: 3, globalLimit: 4, now: .zero)
        let second = table.acquire(key: "a", model: "m", keyLimit: 2, modelLimit: 3, globalLimit: 4, now: .zero)
        let result14 = table.acquire(key: "a", model: "m", keyLimit: 2, modelLimit: 3, globalLimit: 4, now: .zero)
        #expect(result14 == .failure(LeaseRefusal(scope: .key, limit: 2)))
        _ = table.acquire(key: "b", model: "m", keyLimit: 2, modelLimit: 3, globalLimit: 4, now: .zero)
        let result15 = table.acquire(key: "c", model: "m", keyLimit: 2, modelLimit: 3, globalLimit: 4, now: .zero)
        #expect(result15 == .failure(LeaseRefusal(scope: .model, limit: 3)))
        _ = table.acquire(key: "c", model: "other", keyLimit: 2, modelLimit: 3, globalLimit: 4, now: .seconds(100))
        let result16 = table.acquire(key: "d", model: "other", keyLimit: 2, modelLimit: 3, globalLimit: 4, now: .zero)
        #expect(result16 == .failure(LeaseRefusal(scope: .global, limit: 4)))
        let result17 = table.release(try! first.get())
        #expect(result17)
        let secondRelease = table.release(try! first.get())
        #expect(!secondRelease, "a second release does nothing")
        #expect(table.perKey["a"] == 1)
        let result18 = table.expire(timeout: .seconds(60), now: .seconds(120)).count
        #expect(result18 == 2)
        #expect(table.total == 1)
        let reclaimedRelease = table.release(try! second.get())
        #expect(!reclaimedRelease, "already reclaimed by the timeout")
        #expect(table.perKey["a"] == nil)
    }

    func address(_ text: String) -> IPAddress { IPAddress(text)! }

    @Test("bans: max_failures within find_time ban for ban_time; older failures fall out of the window")
    func banWindow() {
        var bans = BanTable(policy: .init(maxFailures: 3, findTime: .seconds(60), banTime: .seconds(100)))
        let client = address("203.0.113.7")
        for second in [0, 10, 65] {
            let early = bans.recordFailure(client, now: .seconds(second))
            #expect(early == nil, "at \(second) s the failure at 0 s has left the 60 s window")
        }
        let banned = bans.recordFailure(client, now: .seconds(68))
        #expect(banned == .seconds(100))
        #expect(bans.banRemaining(client, now: .seconds(80)) == .seconds(88))
        #expect(bans.banRemaining(client, now: .seconds(168)) == nil)
        #expect(bans.banRemaining(address("203.0.113.8"), now: .seconds(80)) == nil)
    }

    @Test("bans: repeat offenders are banned longer each time, up to the maximum")
    func banEscalation() {
        var bans = BanTable(policy: .init(maxFailures: 2, findTime: .seconds(60), banTime: .seconds(10), factor: 3, maxBanTime: .seconds(50)))
        let client = address("198.51.100.1")
        var now = Duration.zero
        var lengths: [Duration] = []
        for _ in 0..<4 {
            _ = bans.recordFailure(client, now: now)
            if let length = bans.recordFailure(client, now: now) { lengths.append(length) }
            now += .seconds(100)
        }
        #expect(lengths == [.seconds(10), .seconds(30), .seconds(50), .seconds(50)])
    }

    @Test("bans: IPv6 addresses of one /64 share a ban; ignored networks are never banned; unban lifts it")
    func banGrouping() {
        var bans = BanTable(policy: .init(maxFailures: 2, ignore: [IPNetwork("10.0.0.0/8")!]))
        _ = bans.recordFailure(address("2001:db8:1:2::1"), now: .zero)
        let result23 = bans.recordFailure(address("2001:db8:1:2:ffff::9"), now: .zero)
        #expect(result23 != nil)
        #expect(bans.banRemaining(address("2001:db8:1:2:abcd::1"), now: .seconds(1)) != nil)
        #expect(bans.banRemaining(address("2001:db8:1:3::1"), now: .seconds(1)) == nil)
        #expect(bans.activeBans(now: .seconds(1)).map(\.group) == ["2001:db8:1:2::/64"])
        for _ in 0..<10 {
            let ignored = bans.recordFailure(address("10.1.2.3"), now: .zero)
            #expect(ignored == nil)
        }
        let result24 = bans.unban(address("2001:db8:1:2::5"), now: .seconds(1))
        #expect(result24)
        #expect(bans.banRemaining(address("2001:db8:1:2::1"), now: .seconds(1)) == nil)
    }

    @Test("bans: memory stays bounded under a spray of a million addresses, and active bans survive it")
    func banMemoryBound() {
        var bans = BanTable(policy: .init(maxFailures: 2, banTime: .seconds(86_400), capacity: 10_000))
        let attacker = address("192.0.2.1")
        _ = bans.recordFailure(attacker, now: .zero)
        _ = bans.recordFailure(attacker, now: .zero)
        var largest = 0
        for index in 0..<1_000_000 {
            _ = bans.recordFailure(IPAddress(ipv4: 0x6400_0000 + UInt32(index)), now: .milliseconds(index))
            largest = max(largest, bans.count)
        }
        #expect(largest <= 10_000)
        #expect(bans.banRemaining(attacker, now: .seconds(1000)) != nil, "an active ban is not evicted")
    }
}
