import NIOCore
import NIOHTTP1
import Synchronization

/// Why a generation request ended, as counted in `/sim/stats` and `vllm:request_success_total`.
enum FinishReason: String {
    case stop, length, abort, error
}

/// Everything the simulator counts, shared by all connections: statistics, Prometheus metrics, the
/// `max_num_seqs` scheduler, and the faults and health that can change at run time.
final class SimulatorState: Sendable {
    struct Counters {
        var requests: [String: Int] = [:]
        var running = 0
        var completed = 0
        var aborted = 0
        var failed = 0
        var promptTokens = 0
        var generatedTokens = 0
        /// Per `METHOD /path`: prompt and generated tokens, so every meter is checked against its route's count.
        var tokensByRoute: [String: (prompt: Int, generated: Int)] = [:]
        /// Responses API store: id → the response object and the context a continuation prepends.
        var storedResponses: [String: (object: String, context: String)] = [:]
        var finishedByReason: [String: Int] = [:]
        var timeToFirstToken = Histogram(bounds: Histogram.vllmTimeToFirstTokenBounds)
        /// Kept as received (copy-on-write values) and turned into text only when `/sim/stats` is read.
        var lastRequestHeaders = HTTPHeaders()
        var lastRequestPath = ""
        var lastRequestBody = ByteBuffer()
        var waiting: [(id: UInt64, start: @Sendable () -> Void)] = []
        var faults: SimulatorFaults
        var nextID: UInt64 = 1
    }

    private let counters: Mutex<Counters>
    let maxNumSeqs: Int?

    init(faults: SimulatorFaults, maxNumSeqs: Int?) {
        counters = Mutex(Counters(faults: faults))
        self.maxNumSeqs = maxNumSeqs
    }

    var faults: SimulatorFaults {
        get { counters.withLock { $0.faults } }
    }

    func setFaults(_ faults: SimulatorFaults) {
        counters.withLock { $0.faults = faults }
    }

    /// Counts a request and remembers its headers and body for tests (`/sim/...` requests are not recorded).
    func record(method: String, path: String, headers: HTTPHeaders, body: ByteBuffer) {
        counters.withLock { counters in
            counters.requests["\(method) \(path)", default: 0] += 1
            counters.lastRequestHeaders = headers
            counters.lastRequestPath = path
            counters.lastRequestBody = body
        }
    }

    func nextRequestID() -> UInt64 {
        counters.withLock { counters in
            defer { counters.nextID += 1 }
            return counters.nextID
        }
    }

    /// Starts the request now when a sequence slot is free (returns true), else queues `start` for later.
    func admit(id: UInt64, start: @escaping @Sendable () -> Void) -> Bool {
        counters.withLock { counters in
            if let maxNumSeqs, counters.running >= maxNumSeqs {
                counters.waiting.append((id, start))
                return false
            }
            counters.running += 1
            return true
        }
    }

    /// Removes a queued request whose client left; true when it was still waiting.
    func cancelWaiting(id: UInt64) -> Bool {
        counters.withLock { counters in
            guard let index = counters.waiting.firstIndex(where: { $0.id == id }) else { return false }
            counters.waiting.remove(at: index)
            counters.aborted += 1
            counters.finishedByReason[FinishReason.abort.rawValue, default: 0] += 1
            return true
        }
    }

    /// Ends a running request, counts its tokens, and starts the next waiting one.
    func finish(_ reason: FinishReason, route: String, promptTokens: Int, generatedTokens: Int) {
        let next: (@Sendable () -> Void)? = counters.withLock { counters in
            counters.running -= 1
            counters.promptTokens += promptTokens
            counters.generatedTokens += generatedTokens
            counters.tokensByRoute[route, default: (0, 0)].prompt += promptTokens
            counters.tokensByRoute[route, default: (0, 0)].generated += generatedTokens
            counters.finishedByReason[reason.rawValue, default: 0] += 1
            switch reason {
            case .stop, .length: counters.completed += 1
            case .abort: counters.aborted += 1
            case .error: counters.failed += 1
            }
            guard !counters.waiting.isEmpty else { return nil }
            counters.running += 1
            return counters.waiting.removeFirst().start
        }
        next?()
    }

    /// Counts a request answered at once, without the scheduler (pooling, audio).
    func countImmediate(route: String, promptTokens: Int, generatedTokens: Int = 0) {
        counters.withLock { counters in
            counters.completed += 1
            counters.promptTokens += promptTokens
            counters.generatedTokens += generatedTokens
            counters.tokensByRoute[route, default: (0, 0)].prompt += promptTokens
            counters.tokensByRoute[route, default: (0, 0)].generated += generatedTokens
        }
    }

    func storeResponse(id: String, object: String, context: String) {
        counters.withLock { $0.storedResponses[id] = (object, context) }
    }

    func storedResponse(_ id: String) -> (object: String, context: String)? {
        counters.withLock { $0.storedResponses[id] }
    }

    /// Counts a request refused before it ran (validation, injected failure).
    func countFailure() {
        counters.withLock { $0.failed += 1 }
    }

    func recordTimeToFirstToken(seconds: Double) {
        counters.withLock { $0.timeToFirstToken.observe(seconds) }
    }

    var inFlight: Int { counters.withLock { $0.running + $0.waiting.count } }

    func reset() {
        counters.withLock { counters in
            let faults = counters.faults
            let waiting = counters.waiting
            let running = counters.running
            let stored = counters.storedResponses
            counters = Counters(faults: faults)
            counters.storedResponses = stored
            counters.waiting = waiting
            counters.running = running
        }
    }

    func snapshot() -> Counters { counters.withLock { $0 } }
}

/// A Prometheus histogram with fixed upper bounds.
struct Histogram {
    /// vLLM's buckets for `vllm:time_to_first_token_seconds`.
    static let vllmTimeToFirstTokenBounds: [Double] = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
                                                       1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0]
    let bounds: [Double]
    var counts: [Int]
    var sum = 0.0
    var count = 0

    init(bounds: [Double]) {
        self.bounds = bounds
        counts = Array(repeating: 0, count: bounds.count)
    }

    mutating func observe(_ value: Double) {
        sum += value
        count += 1
        if let index = bounds.firstIndex(where: { value <= $0 }) { counts[index] += 1 }
    }

    /// Cumulative counts per bound, as Prometheus `le` buckets report them.
    var cumulative: [Int] {
        var running = 0
        return counts.map { running += $0; return running }
    }
}
