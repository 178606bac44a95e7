import NIOCore

/// Reads vLLM's SSE stream for token usage and removes what the gateway injected, so the client receives exactly
/// the events it would have received without the gateway.
///
/// The gateway asks for `include_usage` and `continuous_usage_stats`. When the client did not ask for usage, the
/// final usage event (`"choices":[]`) is dropped; when it did not ask for continuous usage, the `"usage"` member is cut
/// from the other events. vLLM writes `usage` as the last member, so cutting `,"usage":{…}` restores the original bytes.
/// Works on the bytes in place: events are copied once, into the output, and usage numbers are read without a parser.
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
    private static let promptKey = Array(#""prompt_tokens":"#.utf8)
    private static let completionKey = Array(#""completion_tokens":"#.utf8)

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

    private mutating func filter(_ event: Range<Int>, into output: inout [UInt8]) {
        guard let marker = Self.find(Self.usageMarker, in: pending, within: event) else {
            output.append(contentsOf: pending[event])
            return
        }
        let open = marker.upperBound - 1
        var depth = 0
        var close = open
        while close < event.upperBound {
            if pending[close] == UInt8(ascii: "{") { depth += 1 }
            if pending[close] == UInt8(ascii: "}") { depth -= 1; if depth == 0 { break } }
            close += 1
        }
        guard close < event.upperBound else {
            output.append(contentsOf: pending[event])
            return
        }
        if let prompt = number(after: Self.promptKey, within: open..<close), let completion = number(after: Self.completionKey, within: open..<close) {
            usage = (prompt, max(completion, usage?.completion ?? 0))
        }
        if Self.find(Self.emptyChoices, in: pending, within: event.lowerBound..<marker.lowerBound) != nil {
            if !dropUsageEvent { output.append(contentsOf: pending[event]) }
            return
        }
        guard stripContinuousUsage else {
            output.append(contentsOf: pending[event])
            return
        }
        output.append(contentsOf: pending[event.lowerBound..<marker.lowerBound])
        output.append(contentsOf: pending[(close + 1)..<event.upperBound])
    }

    /// The non-negative integer right after `key` inside `range`.
    private func number(after key: [UInt8], within range: Range<Int>) -> Int? {
        guard let found = Self.find(key, in: pending, within: range) else { return nil }
        var value = 0
        var position = found.upperBound
        var digits = 0
        while position < range.upperBound, pending[position] >= 0x30, pending[position] <= 0x39 {
            value = value * 10 + Int(pending[position] - 0x30)
            position += 1
            digits += 1
        }
        return digits > 0 ? value : nil
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], within range: Range<Int>) -> Range<Int>? {
        guard range.count >= needle.count else { return nil }
        let first = needle[0]
        var start = range.lowerBound
        let last = range.upperBound - needle.count
        while start <= last {
            if haystack[start] == first {
                var matched = 1
                while matched < needle.count, haystack[start + matched] == needle[matched] { matched += 1 }
                if matched == needle.count { return start..<start + needle.count }
            }
            start += 1
        }
        return nil
    }
}
