import NIOCore

/// Token counts as vLLM reports them in a `usage` object.
struct Usage: Sendable, Equatable {
    var prompt: Int
    var completion: Int
    var total: Int { prompt.saturatingAdded(completion) }
}

/// Reads vLLM's token usage from a response as it passes through, and removes from an event stream the one event
/// the gateway asked for that the client did not: the final usage event (`"choices":[]`).
///
/// The final usage — the last `usage` of a JSON body, or a stream's usage event — counts every prompt and choice;
/// continuous usage on other events counts one choice only, so it is kept as a lower bound, never as the charge.
/// Objects that straddle reads are found: unscanned bytes carry over to the next read (at most ``carryLimit``).
struct ResponseMeter {
    enum Format: Equatable {
        /// A JSON body, passed on unchanged.
        case json
        /// Server-sent events; `dropUsageEvent` when the gateway added `include_usage` to the request.
        case eventStream(dropUsageEvent: Bool)
    }

    let format: Format
    /// The final usage, once seen.
    private(set) var final: Usage?
    /// The largest running (continuous) usage seen on a stream.
    private(set) var running: Usage?
    /// Whether the stream carried an error event (vLLM failed after the head).
    private(set) var sawErrorEvent = false
    private var pending: [UInt8] = []

    /// Longest stretch of unscanned bytes kept; a usage object is a few hundred bytes.
    static let carryLimit = 64 * 1024

    init(format: Format) {
        self.format = format
    }

    /// Consumes bytes from vLLM; returns what goes to the client (`nil`: the input unchanged, no copy made).
    mutating func consume(_ buffer: ByteBuffer) -> ByteBuffer? {
        switch format {
        case .json:
            scanJSON(buffer)
            return nil
        case .eventStream(let dropUsageEvent):
            return filterEvents(buffer, dropUsageEvent: dropUsageEvent)
        }
    }

    /// What is left when the stream ends without a final blank line (passed on unchanged).
    mutating func flush() -> [UInt8] {
        guard case .eventStream = format else { return [] }
        defer { pending = [] }
        return pending
    }

    // MARK: - JSON bodies

    private mutating func scanJSON(_ buffer: ByteBuffer) {
        pending.append(contentsOf: buffer.readableBytesView)
        let (found, keepFrom) = pending.withUnsafeBytes { UsageScanner.lastUsage(in: $0) }
        if let found { final = found }
        let keep = max(keepFrom, pending.count - Self.carryLimit)
        pending.removeFirst(min(keep, pending.count))
    }

    // MARK: - Event streams

    private static let emptyChoices = Array(#""choices":[]"#.utf8)
    private static let errorMarker = Array(#"data: {"error":"#.utf8)

    private mutating func filterEvents(_ buffer: ByteBuffer, dropUsageEvent: Bool) -> ByteBuffer {
        pending.append(contentsOf: buffer.readableBytesView)
        var output = ByteBuffer()
        output.reserveCapacity(pending.count)
        var start = 0
        var index = 0
        while index + 1 < pending.count {
            if pending[index] == 0x0A, pending[index + 1] == 0x0A {
                if keep(event: start..<index + 2, dropUsageEvent: dropUsageEvent) { output.writeBytes(pending[start..<index + 2]) }
                start = index + 2
                index = start
            } else {
                index += 1
            }
        }
        pending.removeFirst(start)
        if pending.count > Self.carryLimit {
            // Not SSE as vLLM writes it: pass the bytes on rather than hold them.
            output.writeBytes(pending)
            pending.removeAll()
        }
        return output
    }

    /// Reads one whole event's usage; `false` for the usage event the client did not ask for.
    private mutating func keep(event: Range<Int>, dropUsageEvent: Bool) -> Bool {
        let (usage, isUsageEvent, isError) = pending.withUnsafeBytes { bytes -> (Usage?, Bool, Bool) in
            let window = UnsafeRawBufferPointer(rebasing: bytes[event])
            let isError = UsageScanner.find(Self.errorMarker, in: window, within: 0..<min(window.count, Self.errorMarker.count)) != nil
            guard let (usage, marker) = UsageScanner.firstUsage(in: window) else { return (nil, false, isError) }
            return (usage, UsageScanner.find(Self.emptyChoices, in: window, within: 0..<marker) != nil, isError)
        }
        if isError { sawErrorEvent = true }
        guard let usage else { return true }
        if isUsageEvent {
            final = usage
            return !dropUsageEvent
        }
        if usage.total > running?.total ?? -1 { running = usage }
        return true
    }
}
