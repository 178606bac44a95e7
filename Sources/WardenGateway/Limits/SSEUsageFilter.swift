import NIOCore

/// Reads vLLM's SSE stream for token usage and removes what the gateway injected, so the client receives exactly
/// the events it would have received without the gateway.
///
/// The gateway asks for `include_usage` and `continuous_usage_stats`. When the client did not ask for usage, the
/// final usage event (`"choices":[]`) is dropped; when it did not ask for continuous usage, the `"usage"` member is cut
/// from the other events. vLLM writes `usage` as the last member, so cutting `,"usage":{…}` restores the original bytes.
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
        var start = 0
        var index = 0
        while index + 1 < pending.count {
            if pending[index] == 0x0A, pending[index + 1] == 0x0A {
                output += filter(Array(pending[start...index + 1]))
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

    private mutating func filter(_ event: [UInt8]) -> [UInt8] {
        guard let range = Self.find(Self.usageMarker, in: event) else { return event }
        let open = range.upperBound - 1
        var depth = 0
        var close = open
        while close < event.count {
            if event[close] == UInt8(ascii: "{") { depth += 1 }
            if event[close] == UInt8(ascii: "}") { depth -= 1; if depth == 0 { break } }
            close += 1
        }
        guard close < event.count else { return event }
        if let object = try? JSONValue.parse(event[open...close]), let prompt = object["prompt_tokens"]?.intValue,
           let completion = object["completion_tokens"]?.intValue {
            usage = (prompt, max(completion, usage?.completion ?? 0))
        }
        let isUsageEvent = Self.find(Self.emptyChoices, in: event) != nil
        if isUsageEvent { return dropUsageEvent ? [] : event }
        guard stripContinuousUsage else { return event }
        return Array(event[..<range.lowerBound]) + Array(event[(close + 1)...])
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Range<Int>? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if haystack[start..<start + needle.count].elementsEqual(needle) { return start..<start + needle.count }
        }
        return nil
    }
}

import WardenJSON
