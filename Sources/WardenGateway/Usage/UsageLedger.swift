import Synchronization

/// One row of the usage ledger: a key's requests to one model on one route in one UTC hour (or, once compacted,
/// one UTC day), with one outcome: `""` for requests answered, else the refusal reason (`rate_tokens`, `quota_day`…).
public struct UsageCell: Hashable, Sendable {
    public var key: String
    /// `""` when the request was refused before its model was known.
    public var model: String
    public var route: String
    /// Seconds since the epoch at the start of the hour (or day).
    public var hour: Int64
    public var outcome: String

    public init(key: String, model: String, route: String, hour: Int64, outcome: String) {
        self.key = key
        self.model = model
        self.route = route
        self.hour = hour
        self.outcome = outcome
    }
}

/// What one ledger cell counts. Charged tokens are what the metering rule settled (what limits and quotas count);
/// prompt and completion tokens are what vLLM reported.
public struct UsageCounts: Sendable, Equatable {
    public var requests = 0
    public var promptTokens = 0
    public var completionTokens = 0
    public var chargedTokens = 0

    public init(requests: Int = 0, promptTokens: Int = 0, completionTokens: Int = 0, chargedTokens: Int = 0) {
        self.requests = requests
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.chargedTokens = chargedTokens
    }

    /// Saturating: counts come from vLLM's responses and from the store, and neither may make a sum trap.
    public mutating func add(_ other: UsageCounts) {
        requests = requests.saturatingAdded(other.requests)
        promptTokens = promptTokens.saturatingAdded(other.promptTokens)
        completionTokens = completionTokens.saturatingAdded(other.completionTokens)
        chargedTokens = chargedTokens.saturatingAdded(other.chargedTokens)
    }
}

/// The request path's side of the ledger: counts accumulate in memory, one dictionary update per request under
/// a lock, and ``GatewayServer`` takes them every second and writes them in one SQLite transaction. What has not
/// been written when the process dies (at most that second) is lost.
final class UsageLedger: Sendable {
    private let pending = Mutex<[UsageCell: UsageCounts]>([:])

    func add(_ cell: UsageCell, _ counts: UsageCounts) {
        pending.withLock { $0[cell, default: UsageCounts()].add(counts) }
    }

    /// Everything counted since the last take.
    func take() -> [UsageCell: UsageCounts] {
        pending.withLock { cells in
            defer { cells = [:] }
            return cells
        }
    }

    /// Puts back what could not be written, to be tried again with the next batch.
    func putBack(_ cells: [UsageCell: UsageCounts]) {
        pending.withLock { pending in
            for (cell, counts) in cells { pending[cell, default: UsageCounts()].add(counts) }
        }
    }
}
