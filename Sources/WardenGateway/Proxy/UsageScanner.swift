import NIOCore

/// Finds vLLM's `usage` object in response bytes without parsing the whole body (it sits at the end of
/// non-streaming answers and in SSE events) and reads its token counts in place.
enum UsageScanner {
    private static let marker = Array(#""usage":{"#.utf8)
    private static let promptKey = Array(#""prompt_tokens":"#.utf8)
    private static let completionKey = Array(#""completion_tokens":"#.utf8)

    /// The last `usage` in `buffer`, as (prompt, completion) tokens.
    static func lastUsage(in buffer: ByteBuffer) -> (prompt: Int, completion: Int)? {
        buffer.withUnsafeReadableBytes { bytes -> (prompt: Int, completion: Int)? in
            guard bytes.count >= marker.count else { return nil }
            var start = bytes.count - marker.count
            while start >= 0 {
                if bytes[start] == marker[0], matches(marker, in: bytes, at: start) {
                    let open = start + marker.count - 1
                    guard let close = objectEnd(in: bytes, open: open, limit: bytes.count) else { return nil }
                    return counts(in: bytes, object: open..<close + 1)
                }
                start -= 1
            }
            return nil
        }
    }

    /// The index of the `}` closing the object that opens at `open` (usage objects hold no strings with braces).
    static func objectEnd(in bytes: UnsafeRawBufferPointer, open: Int, limit: Int) -> Int? {
        var depth = 0
        var position = open
        while position < limit {
            if bytes[position] == UInt8(ascii: "{") { depth += 1 }
            if bytes[position] == UInt8(ascii: "}") {
                depth -= 1
                if depth == 0 { return position }
            }
            position += 1
        }
        return nil
    }

    /// `prompt_tokens` and `completion_tokens` of the usage object at `object`.
    static func counts(in bytes: UnsafeRawBufferPointer, object: Range<Int>) -> (prompt: Int, completion: Int)? {
        guard let prompt = number(after: promptKey, in: bytes, within: object),
              let completion = number(after: completionKey, in: bytes, within: object) else { return nil }
        return (prompt, completion)
    }

    /// The first occurrence of `needle` within `range`.
    static func find(_ needle: [UInt8], in bytes: UnsafeRawBufferPointer, within range: Range<Int>) -> Range<Int>? {
        guard range.count >= needle.count else { return nil }
        var start = range.lowerBound
        while start <= range.upperBound - needle.count {
            if bytes[start] == needle[0], matches(needle, in: bytes, at: start) { return start..<start + needle.count }
            start += 1
        }
        return nil
    }

    private static func matches(_ needle: [UInt8], in bytes: UnsafeRawBufferPointer, at start: Int) -> Bool {
        var offset = 1
        while offset < needle.count, bytes[start + offset] == needle[offset] { offset += 1 }
        return offset == needle.count
    }

    /// The non-negative integer right after `key` inside `range`.
    private static func number(after key: [UInt8], in bytes: UnsafeRawBufferPointer, within range: Range<Int>) -> Int? {
        guard let found = find(key, in: bytes, within: range) else { return nil }
        var value = 0
        var position = found.upperBound
        while position < range.upperBound, bytes[position] >= 0x30, bytes[position] <= 0x39 {
            value = value * 10 + Int(bytes[position] - 0x30)
            position += 1
        }
        return position > found.upperBound ? value : nil
    }
}
