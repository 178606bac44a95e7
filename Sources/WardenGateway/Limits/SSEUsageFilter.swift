import NIOCore

/// Reads vLLM's SSE stream for token usage and removes what the gateway injected, so the client receives exactly
/// the events it would have received without the gateway.
///
/// The gateway asks for `include_usage` and `continuous_usage_stats`. When the client did not ask for usage, the
/// final usage event (`"choices":[]`) is dropped; when it did not ask for continuous usage, the `"usage"` member is cut
/// from the other events. vLLM writes `usage` as the last member, so cutting `,"usage":{…}` restores the original bytes.
/// Works on the bytes in place: events are copied once, into the output; usage is read by ``UsageScanner``.
struct SSEUsageFilter {
    let dropUsageEvent: Bool
    let stripContinuousUsage: Bool
    private var pending: [UInt8] = []
    /// The last cumulative usage seen: (prompt, completion) tokens.
    private(set) var usage: (prompt: Int, completion: Int)?

    init(clientAskedForUsage: Bool, clientAskedForContinuousUsage: Bool) {
        dropUsageEvent = !clientAskedForUsage
        stripContinuousUsage = !clientAskedForContinuousUsage
    }

    private static let usageMarker = Array(#","usage":{"#.utf8)
    private static let emptyChoices = Array(#""choices":[]"#.utf8)

    /// Consumes bytes from vLLM; returns the bytes to send to the client (whole events only).
    mutating func process(_ buffer: ByteBuffer) -> [UInt8] {
        pending.append(contentsOf: buffer.readableBytesView)
        var output: [UInt8] = []
        output.reserveCapacity(pending.count)
        var start = 0
        var index = 0
        while index + 1 < pending.count {
            if pending[index] == 0x0A, pending[index + 1] == 0x0A {
                filter(start..<index + 2, into: &output)
                start = index + 2
                index = start
            } else {
                index += 1
            }
        }
        pending.removeFirst(start)
        return output
    }

    /// What is left when the stream ends without a final blank line (passed on unchanged).
    mutating func flush() -> [UInt8] {
        defer { pending = [] }
        return pending
    }

    private struct Found {
        /// `,"usage":{…}` within the event.
        var member: Range<Int>
        var counts: (prompt: Int, completion: Int)?
        var isUsageEvent: Bool
    }

    private mutating func filter(_ event: Range<Int>, into output: inout [UInt8]) {
        let found = pending.withUnsafeBytes { bytes -> Found? in
            guard let marker = UsageScanner.find(Self.usageMarker, in: bytes, within: event),
                  let close = UsageScanner.objectEnd(in: bytes, open: marker.upperBound - 1, limit: event.upperBound) else { return nil }
            return Found(member: marker.lowerBound..<close + 1,
                         counts: UsageScanner.counts(in: bytes, object: marker.upperBound - 1..<close + 1),
                         isUsageEvent: UsageScanner.find(Self.emptyChoices, in: bytes, within: event.lowerBound..<marker.lowerBound) != nil)
        }
        guard let found else {
            output.append(contentsOf: pending[event])
            return
        }
        if let counts = found.counts { usage = (counts.prompt, max(counts.completion, usage?.completion ?? 0)) }
        if found.isUsageEvent {
            if !dropUsageEvent { output.append(contentsOf: pending[event]) }
            return
        }
        guard stripContinuousUsage else {
            output.append(contentsOf: pending[event])
            return
        }
        output.append(contentsOf: pending[event.lowerBound..<found.member.lowerBound])
        output.append(contentsOf: pending[found.member.upperBound..<event.upperBound])
    }
}
