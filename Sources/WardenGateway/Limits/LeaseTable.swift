/// Requests in flight, per key, per model and in total. Every lease is released exactly once — on completion,
/// error, client disconnect, upstream failure or drain — and a lease timeout reclaims any that were missed, so a
/// counter can never stay stuck (the LiteLLM failure mode).
public struct LeaseTable: Sendable, Equatable {
    public struct Lease: Sendable, Equatable {
        public var key: String
        public var model: String
        public var acquired: Duration
    }

    public enum Scope: String, Sendable, Equatable { case key, model, global }

    private(set) public var leases: [UInt64: Lease] = [:]
    private(set) public var perKey: [String: Int] = [:]
    private(set) public var perModel: [String: Int] = [:]
    private var nextID: UInt64 = 1

    public init() {}

    public var total: Int { leases.count }

    /// A lease id, or the scope whose limit is reached. Each count is looked up once (its key hashed once), as it is
    /// on every request.
    public mutating func acquire(key: String, model: String, keyLimit: Int, modelLimit: Int?, globalLimit: Int, now: Duration) -> Result<UInt64, LeaseRefusal> {
        if leases.count >= globalLimit { return .failure(LeaseRefusal(scope: .global, limit: globalLimit)) }
        let keyIndex = perKey.index(forKey: key)
        if (keyIndex.map { perKey.values[$0] } ?? 0) >= keyLimit { return .failure(LeaseRefusal(scope: .key, limit: keyLimit)) }
        let modelIndex = perModel.index(forKey: model)
        if let modelLimit, (modelIndex.map { perModel.values[$0] } ?? 0) >= modelLimit {
            return .failure(LeaseRefusal(scope: .model, limit: modelLimit))
        }
        let id = nextID
        nextID += 1
        leases[id] = Lease(key: key, model: model, acquired: now)
        if let keyIndex { perKey.values[keyIndex] += 1 } else { perKey[key] = 1 }
        if let modelIndex { perModel.values[modelIndex] += 1 } else { perModel[model] = 1 }
        return .success(id)
    }

    /// Releases a lease; releasing twice (or an expired one) does nothing and returns false.
    @discardableResult
    public mutating func release(_ id: UInt64) -> Bool {
        guard let lease = leases.removeValue(forKey: id) else { return false }
        Self.decrement(&perKey, lease.key)
        Self.decrement(&perModel, lease.model)
        return true
    }

    /// One less for `name`, and no entry once none is left.
    private static func decrement(_ counts: inout [String: Int], _ name: String) {
        guard let index = counts.index(forKey: name) else { return }
        if counts.values[index] <= 1 { counts.remove(at: index) } else { counts.values[index] -= 1 }
    }

    /// Reclaims leases older than `timeout`; returns their ids.
    public mutating func expire(timeout: Duration, now: Duration) -> [UInt64] {
        let stale = leases.filter { now - $0.value.acquired >= timeout }.map(\.key)
        for id in stale { release(id) }
        return stale
    }
}

public struct LeaseRefusal: Error, Sendable, Equatable {
    public var scope: LeaseTable.Scope
    public var limit: Int
}
