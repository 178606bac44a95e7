import Testing
import WardenConfig
@testable import WardenGateway

@Suite("limit policies with an injected clock")
struct LimitPolicyTests {
    @Test("a token-window slot's end is slotLength × (number + 1), for every sign and at the extremes of a clock")
    func slotEnds() {
        for number: Int64 in [-12, -11, -10, -9, -1, 0, 1, 9, 10, 11, 599, 600, 123_456_789, 9_000_000_000_000] {
            #expect(TokenWindow.end(of: number) == TokenWindow.slotLength * Int(number + 1), "\(number)")
        }
        for tenths: Int64 in [0, 1, 5, 9, 10, 601, 86_400_0] {
            let time = Duration.milliseconds(tenths * 100) + .nanoseconds(7)
            #expect(TokenWindow.end(of: TokenWindow.slot(at: time)) == .milliseconds((tenths + 1) * 100))
        }
    }

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

    @Test("tokens: a sliding minute in 100 ms slots; a settlement replaces the reservation; the exact wait until the oldest leave")
    func tokenWindow() {
        var window = TokenWindow(perMinute: 6000)
        // A slot leaves the window when its last instant is 60 s old: the slot [0, 0.1 s) at 60.1 s.
        #expect(window.reserve(4000, now: .zero) == .admitted(remaining: 2000, resetAfter: .milliseconds(60_100)))
        // Still running: its reservation leaves the window only when it ends, so no wait can be promised.
        #expect(window.reserve(3000, now: .seconds(10)) == .rejected(retryAfter: .seconds(60)))
        window.settle(admittedAt: .zero, reserved: 4000, charged: 1000, now: .seconds(10))
        #expect(window.charged == 1000)
        #expect(window.reserve(3000, now: .seconds(20)) == .admitted(remaining: 2000, resetAfter: .milliseconds(60_100)))
        // Charged more than reserved (vLLM counted more prompt tokens than estimated): the window holds the overrun.
        window.settle(admittedAt: .seconds(20), reserved: 3000, charged: 4500, now: .seconds(30))
        #expect(window.charged == 5500)
        // Both settled: the first slot's 1,000 leave at 60.1 s.
        #expect(window.reserve(1000, now: .seconds(30)) == .rejected(retryAfter: .milliseconds(30_100)))
        #expect(window.peek(now: .seconds(60)).remaining == 500)
        #expect(window.peek(now: .milliseconds(60_100)).remaining == 1500)
        #expect(window.peek(now: .milliseconds(80_100)).remaining == 6000)
    }

    @Test("tokens: a reservation above the whole minute's budget can never be admitted")
    func tokenWindowOversized() {
        var window = TokenWindow(perMinute: 1000)
        #expect(window.reserve(1001, now: .zero) == .exceedsLimit)
        #expect(window.reserve(Int.max, now: .zero) == .exceedsLimit)
        #expect(window.reserve(1000, now: .zero) == .admitted(remaining: 0, resetAfter: .milliseconds(60_100)))
    }

    @Test("tokens: a request still running when its slot leaves the window stays counted until it ends; then only its overrun stays")
    func tokenWindowLongRequest() {
        var window = TokenWindow(perMinute: 1000)
        _ = window.reserve(600, now: .zero)
        // Still generating at 61 s: its reservation is carried, so the key cannot start another minute's worth.
        #expect(window.peek(now: .seconds(61)).remaining == 400)
        #expect(window.reserve(600, now: .seconds(61)) == .rejected(retryAfter: .seconds(60)))
        window.settle(admittedAt: .zero, reserved: 600, charged: 700, now: .seconds(90))
        #expect(window.carried == 0)
        #expect(window.peek(now: .seconds(90)).remaining == 900, "the 100 tokens beyond the reservation, counted from its end")
        window.settle(admittedAt: .seconds(5), reserved: 600, charged: 100, now: .seconds(90))
        #expect(window.peek(now: .seconds(90)).remaining == 900, "a settlement the window never counted changes nothing")
        #expect(window.carried == 0)
    }

    @Test("tokens: two long requests of N/2 started at 0 s and another N at 60 s never add up to more than N counted")
    func tokenWindowLongRequestsBound() {
        var window = TokenWindow(perMinute: 1000)
        #expect(window.reserve(500, now: .zero) != .exceedsLimit)
        #expect(window.reserve(500, now: .zero) != .exceedsLimit)
        guard case .rejected = window.reserve(1000, now: .seconds(60) + .milliseconds(100)) else {
            Issue.record("admitted a new minute's worth while the first two still generate")
            return
        }
        window.settle(admittedAt: .zero, reserved: 500, charged: 500, now: .seconds(100))
        window.settle(admittedAt: .zero, reserved: 500, charged: 500, now: .seconds(100))
        #expect(window.reserve(1000, now: .seconds(100)) == .admitted(remaining: 0, resetAfter: .milliseconds(60_100)))
        window.settle(admittedAt: .seconds(100), reserved: 1000, charged: Int.max, now: .seconds(101))
        #expect(window.peek(now: .seconds(101)).remaining == 0, "absurd counts saturate, never trap")
    }

    @Test("tokens: at 2,000 requests a second the window counts exactly the slots of the last 60 s")
    func tokenWindowHighRate() {
        var window = TokenWindow(perMinute: 1_000_000_000)
        for step in 0..<200_000 { _ = window.reserve(1, now: .microseconds(step * 500)) }
        // At 99.9995 s the oldest slot still in the window is [39.9 s, 40.0 s): steps 79,800 onwards.
        #expect(window.charged == 200_000 - 79_800)
    }

    @Test("tokens: in any 60 s, what is admitted never exceeds the limit (random arrivals, sizes and settlements)")
    func tokenWindowBound() {
        var generator = SplitMix(seed: 42)
        var window = TokenWindow(perMinute: 2000)
        var admitted: [(at: Duration, tokens: Int)] = []
        var now = Duration.zero
        for _ in 1...5000 {
            now += .milliseconds(Int(generator.next() % 400))
            let tokens = Int(generator.next() % 700) + 1
            if case .admitted = window.reserve(tokens, now: now) {
                let charged = Int(generator.next() % UInt64(tokens + 1))
                window.settle(admittedAt: now, reserved: tokens, charged: charged, now: now)
                admitted.append((now, charged))
            }
        }
        for (index, entry) in admitted.enumerated() {
            let inWindow = admitted[index...].prefix { $0.at < entry.at + .seconds(60) }.reduce(0) { $0 + $1.tokens }
            #expect(inWindow <= 2000, "window starting at \(entry.at) admitted \(inWindow)")
        }
        #expect(admitted.count > 100)
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

    @Test("bans: a table full of running bans never grows; new addresses are tracked again once the earliest ban ends")
    func banTableFullOfBans() {
        var bans = BanTable(policy: .init(maxFailures: 2, banTime: .seconds(100), capacity: 100))
        for index in 0..<100 {
            let group = IPAddress(ipv4: 0x6400_0000 + UInt32(index))
            _ = bans.recordFailure(group, now: .seconds(Int64(index)))
            let banned = bans.recordFailure(group, now: .seconds(Int64(index)))
            #expect(banned == .seconds(100))
        }
        #expect(bans.count == 100 && bans.activeBanCount(now: .seconds(99)) == 100)
        // A spray of new addresses while every entry is a running ban: none is tracked, none can be banned, none evicts a ban.
        for index in 0..<10_000 {
            let newcomer = IPAddress(ipv4: 0x0A00_0000 + UInt32(index))
            let (first, second) = (bans.recordFailure(newcomer, now: .seconds(99)), bans.recordFailure(newcomer, now: .seconds(99)))
            #expect(first == nil && second == nil)
        }
        #expect(bans.count == 100 && bans.activeBanCount(now: .seconds(99)) == 100)
        // Lifting a ban by hand makes room at once.
        let unbanned = bans.unban(IPAddress(ipv4: 0x6400_0063), now: .seconds(99))
        let lifted = IPAddress(ipv4: 0x0B00_0001)
        _ = bans.recordFailure(lifted, now: .seconds(99))
        let liftedBan = bans.recordFailure(lifted, now: .seconds(99))
        #expect(unbanned && liftedBan == .seconds(100) && bans.count == 100)
        // Full again until the first ban ends at 100 s; then there is room, and a newcomer can be banned.
        let early = IPAddress(ipv4: 0x0B00_0002)
        let (earlyFirst, earlySecond) = (bans.recordFailure(early, now: .milliseconds(99_500)), bans.recordFailure(early, now: .milliseconds(99_500)))
        #expect(earlyFirst == nil && earlySecond == nil)
        let late = IPAddress(ipv4: 0x0B00_0003)
        _ = bans.recordFailure(late, now: .seconds(101))
        let lateBan = bans.recordFailure(late, now: .seconds(101))
        #expect(lateBan == .seconds(100))
        #expect(bans.count <= 100 && bans.banRemaining(late, now: .seconds(102)) != nil)
    }
}

/// A small deterministic generator for property tests (SplitMix64).
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("connection limiter")
struct ConnectionLimiterTests {
    @Test("per-address and total caps; an IPv6 /64 counts as one address; exempt networks only meet the total")
    func caps() throws {
        let limiter = ConnectionLimiter(maxTotal: 5, maxPerAddress: 2, exempt: [try #require(IPNetwork("10.0.0.0/8"))])
        let a = IPAddress("2001:db8::1"), b = IPAddress("2001:db8::ffff"), proxy = IPAddress("10.1.2.3")
        #expect(limiter.open(from: a) == nil)
        #expect(limiter.open(from: b) == nil)
        #expect(limiter.open(from: IPAddress("2001:db8::2")) == .address, "same /64")
        #expect(limiter.open(from: proxy) == nil)
        #expect(limiter.open(from: proxy) == nil)
        #expect(limiter.open(from: proxy) == nil)
        #expect(limiter.open(from: proxy) == .total)
        limiter.close(from: a)
        #expect(limiter.openConnections == 4)
        #expect(limiter.open(from: IPAddress("2001:db8::3")) == nil)
    }
}
