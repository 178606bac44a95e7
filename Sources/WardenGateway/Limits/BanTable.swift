import WardenConfig

/// fail2ban semantics inside the gateway: `maxFailures` authentication failures from one address group within
/// `findTime` ban it for `banTime`; each repeat ban lasts `factor` times longer, up to `maxBanTime`
/// (fail2ban's maxretry, findtime, bantime and bantime.increment). IPv6 addresses are grouped by /64, since one
/// host usually owns a whole /64. Memory stays bounded under a spray of addresses: at `capacity` entries, the
/// least recently seen entries that are not banned are evicted first.
public struct BanTable: Sendable {
    public struct Policy: Sendable, Equatable {
        public var maxFailures: Int
        public var findTime: Duration
        public var banTime: Duration
        public var factor: Double
        public var maxBanTime: Duration
        public var ignore: [IPNetwork]
        public var capacity: Int

        public init(maxFailures: Int = 5, findTime: Duration = .seconds(600), banTime: Duration = .seconds(600), factor: Double = 2,
                    maxBanTime: Duration = .seconds(7 * 86_400), ignore: [IPNetwork] = [], capacity: Int = 100_000) {
            self.maxFailures = maxFailures
            self.findTime = findTime
            self.banTime = banTime
            self.factor = factor
            self.maxBanTime = maxBanTime
            self.ignore = ignore
            self.capacity = capacity
        }
    }

    struct Entry: Sendable {
        var failures: [Duration] = []
        var bannedUntil: Duration?
        var bans = 0
        var lastSeen: Duration
    }

    public var policy: Policy
    private(set) var entries: [AddressGroup: Entry] = [:]
    /// Groups in the order they were first seen: eviction walks it from the front, so it costs O(1) amortised.
    private var arrivals: [AddressGroup] = []
    private var arrivalsHead = 0
    /// Changes whenever a ban starts or is lifted: the gateway persists the bans when it moved.
    private(set) var generation = 0
    /// Set while every entry is a running ban: the end of the earliest. Until then a new group is not tracked (its
    /// requests are still refused as unauthenticated), so the table never outgrows `capacity` and no request pays a
    /// scan for room that is not there.
    private var fullUntil: Duration?

    public init(policy: Policy) {
        self.policy = policy
    }

    public var count: Int { entries.count }

    /// Remaining ban time for this address, `nil` when it may proceed. Costs one hash lookup.
    public func banRemaining(_ address: IPAddress, now: Duration) -> Duration? {
        guard let until = entries[AddressGroup(address)]?.bannedUntil, until > now else { return nil }
        return until - now
    }

    /// Counts an authentication failure; returns the ban length when this failure triggers a ban.
    public mutating func recordFailure(_ address: IPAddress, now: Duration) -> Duration? {
        guard !policy.ignore.contains(where: { $0.contains(address) }) else { return nil }
        let group = AddressGroup(address)
        if entries[group] == nil, entries.count >= policy.capacity {
            if let fullUntil, now < fullUntil { return nil }
            evict(now: now)
            guard entries.count < policy.capacity else {
                fullUntil = entries.values.lazy.compactMap(\.bannedUntil).min() ?? now
                return nil
            }
            fullUntil = nil
        }
        if entries[group] == nil { arrivals.append(group) }
        var entry = entries[group] ?? Entry(lastSeen: now)
        entry.lastSeen = now
        if let until = entry.bannedUntil, until > now {
            entries[group] = entry
            return nil
        }
        entry.failures = entry.failures.filter { now - $0 < policy.findTime } + [now]
        guard entry.failures.count >= policy.maxFailures else {
            entries[group] = entry
            return nil
        }
        entry.bans += 1
        entry.failures = []
        let length = min(policy.banTime * pow(policy.factor, Double(entry.bans - 1)), policy.maxBanTime)
        entry.bannedUntil = now + length
        entries[group] = entry
        generation += 1
        return length
    }

    /// Lifts a ban (the repeat-offender count is kept); false when the address was not banned.
    @discardableResult
    public mutating func unban(_ address: IPAddress, now: Duration) -> Bool {
        let group = AddressGroup(address)
        guard let until = entries[group]?.bannedUntil, until > now else { return false }
        entries[group]?.bannedUntil = nil
        entries[group]?.failures = []
        generation += 1
        fullUntil = nil
        return true
    }

    public struct Ban: Sendable, Equatable {
        public var group: String
        public var remaining: Duration
        public var bans: Int
    }

    /// How many bans are running, without describing them (the gateway's gauge reads it every second).
    public func activeBanCount(now: Duration) -> Int {
        entries.values.reduce(0) { $0 + (($1.bannedUntil ?? now) > now ? 1 : 0) }
    }

    public func activeBans(now: Duration) -> [Ban] {
        entries.compactMap { group, entry in
            guard let until = entry.bannedUntil, until > now else { return nil }
            return Ban(group: group.description, remaining: until - now, bans: entry.bans)
        }.sorted { $0.remaining > $1.remaining }
    }

    /// The bans running at `now`, longest first and at most `limit` of them, with their ends as wall-clock
    /// seconds (`epoch` is the wall clock at `now`), to be written to disk.
    func stored(now: Duration, epoch: Int64, limit: Int) -> [StoredBan] {
        entries.compactMap { group, entry -> StoredBan? in
            guard let until = entry.bannedUntil, until > now else { return nil }
            let remaining = Int64(((until - now) / .seconds(1)).rounded(.up))
            return StoredBan(high: group.high, low: group.low, isIPv4: group.isIPv4, until: epoch + remaining, bans: entry.bans)
        }.sorted { $0.until > $1.until }.prefix(limit).map { $0 }
    }

    /// Reinstates bans read from disk; those already over are skipped.
    mutating func restore(_ bans: [StoredBan], now: Duration, epoch: Int64) {
        for ban in bans where ban.until > epoch {
            let group = AddressGroup(high: ban.high, low: ban.low, isIPv4: ban.isIPv4)
            if entries[group] == nil { arrivals.append(group) }
            entries[group] = Entry(bannedUntil: now + .seconds(ban.until - epoch), bans: ban.bans, lastSeen: now)
        }
    }

    /// Frees a tenth of the table, oldest arrivals first; addresses under an active ban are kept (moved to the back).
    private mutating func evict(now: Duration) {
        let target = max(1, policy.capacity / 10)
        var removed = 0
        var examined = 0
        let limit = arrivals.count - arrivalsHead
        while removed < target, examined < limit, arrivalsHead < arrivals.count {
            let group = arrivals[arrivalsHead]
            arrivalsHead += 1
            examined += 1
            guard let entry = entries[group] else { continue }
            if let until = entry.bannedUntil, until > now {
                arrivals.append(group)
            } else {
                entries.removeValue(forKey: group)
                removed += 1
            }
        }
        if arrivalsHead > arrivals.count / 2 {
            arrivals.removeFirst(arrivalsHead)
            arrivalsHead = 0
        }
    }
}

/// A ban as the key store keeps it: the address group, and the end of the ban in seconds since the epoch.
struct StoredBan: Sendable, Equatable {
    var high: UInt64
    var low: UInt64
    var isIPv4: Bool
    var until: Int64
    var bans: Int
}

/// An IPv4 address, or the /64 network of an IPv6 address.
struct AddressGroup: Hashable, Sendable, CustomStringConvertible {
    let high: UInt64
    let low: UInt64
    let isIPv4: Bool

    init(high: UInt64, low: UInt64, isIPv4: Bool) {
        self.high = high
        self.low = low
        self.isIPv4 = isIPv4
    }

    init(_ address: IPAddress) {
        let bytes = address.bytes
        high = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        low = address.isIPv4 ? bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) } : 0
        isIPv4 = address.isIPv4
    }

    var description: String {
        if isIPv4 { return "\((low >> 24) & 0xFF).\((low >> 16) & 0xFF).\((low >> 8) & 0xFF).\(low & 0xFF)" }
        let words = (0..<4).map { String((high >> (48 - 16 * UInt64($0))) & 0xFFFF, radix: 16) }
        return IPNetwork(words.joined(separator: ":") + "::/64")?.description ?? words.joined(separator: ":") + "::/64"
    }
}

import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
