#if canImport(Glibc)
import Glibc
#endif

/// Finds vLLM's `usage` object in response bytes without parsing the whole body (it sits at the end of
/// non-streaming answers and in SSE events) and reads its token counts in place. A `"usage":{` inside generated
/// text cannot match: JSON strings escape their quotes.
enum UsageScanner {
    private static let secondsKey = Array(#""seconds":"#.utf8)

    /// The last complete `usage` object in `bytes`, and from where the bytes must be kept because a usage object
    /// (or its marker) may continue in the next read.
    static func lastUsage(in bytes: UnsafeRawBufferPointer, shape: UsageShape) -> (usage: Usage?, keepFrom: Int) {
        let marker = shape.marker
        var keepFrom = max(0, bytes.count - (marker.count - 1))
        // Candidates are the marker's last byte, `{`: far rarer in JSON than its first, `"`.
        var end = bytes.count
        while let close = lastIndex(of: marker[marker.count - 1], in: bytes, before: end, notBelow: marker.count - 1) {
            end = close
            let start = close - (marker.count - 1)
            guard matches(marker, in: bytes, at: start) else { continue }
            guard let objectClose = objectEnd(in: bytes, open: close, limit: bytes.count) else {
                keepFrom = start  // the object continues in the next read
                continue
            }
            return (counts(in: bytes, object: close..<objectClose + 1, shape: shape), keepFrom)
        }
        return (nil, keepFrom)
    }

    /// The last index of `byte` below `end` and at or above `lowest`: eight bytes a step while a word holds none.
    static func lastIndex(of byte: UInt8, in bytes: UnsafeRawBufferPointer, before end: Int, notBelow lowest: Int) -> Int? {
        var position = end
        while position - 8 >= lowest, !ByteWords.contains(byte, in: bytes.loadUnaligned(fromByteOffset: position - 8, as: UInt64.self)) {
            position -= 8
        }
        while position > lowest {
            position -= 1
            if bytes[position] == byte { return position }
        }
        return nil
    }

    /// The first complete `usage` object in `bytes`, and where its marker starts.
    static func firstUsage(in bytes: UnsafeRawBufferPointer, shape: UsageShape) -> (Usage, Int)? {
        guard let found = find(shape.marker, in: bytes, within: 0..<bytes.count) else { return nil }
        let open = found.upperBound - 1
        guard let close = objectEnd(in: bytes, open: open, limit: bytes.count),
              let usage = counts(in: bytes, object: open..<close + 1, shape: shape) else { return nil }
        return (usage, found.lowerBound)
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

    /// The prompt and completion counts of the usage object at `object`, by `shape`'s names (the completion count
    /// is absent for pooling requests: 0); audio's `{"type":"duration","seconds":S}` is S × the rate, rounded up.
    static func counts(in bytes: UnsafeRawBufferPointer, object: Range<Int>, shape: UsageShape) -> Usage? {
        if let rate = shape.tokensPerSecond {
            // Audio is charged by its length: token counts (a stream's usage) say nothing of the seconds decoded,
            // so without `seconds` there is no usage to settle with, and the reservation stands.
            guard let seconds = number(after: secondsKey, in: bytes, within: object, roundingUp: true) else { return nil }
            return Usage(prompt: seconds.saturatingMultiplied(by: rate), completion: 0)
        }
        guard let prompt = number(after: shape.promptKey, in: bytes, within: object) else { return nil }
        return Usage(prompt: prompt, completion: number(after: shape.completionKey, in: bytes, within: object) ?? 0)
    }

    /// The first occurrence of `needle` within `range`. Candidates are found with `memchr` by the needle's last
    /// byte: the markers end in `{`, `:` or `[`, which JSON holds far fewer of than the `"` they start with (it runs
    /// over every streamed event).
    static func find(_ needle: [UInt8], in bytes: UnsafeRawBufferPointer, within range: Range<Int>) -> Range<Int>? {
        guard !needle.isEmpty, range.count >= needle.count, let base = bytes.baseAddress else { return nil }
        let lastByte = Int32(needle[needle.count - 1])
        var end = range.lowerBound + needle.count - 1
        while end < range.upperBound {
            guard let candidate = memchr(base + end, lastByte, range.upperBound - end) else { return nil }
            end = base.distance(to: UnsafeRawPointer(candidate))
            let start = end - (needle.count - 1)
            if matches(needle, in: bytes, at: start) { return start..<end + 1 }
            end += 1
        }
        return nil
    }

    /// Whether `needle` is at `start` (its first byte is compared too: callers found a candidate by another).
    private static func matches(_ needle: [UInt8], in bytes: UnsafeRawBufferPointer, at start: Int) -> Bool {
        var offset = 0
        while offset < needle.count, bytes[start + offset] == needle[offset] { offset += 1 }
        return offset == needle.count
    }

    /// The non-negative number right after `key` inside `range`, saturating rather than overflowing; a fraction
    /// is dropped, or rounds up with `roundingUp`.
    static func number(after key: [UInt8], in bytes: UnsafeRawBufferPointer, within range: Range<Int>, roundingUp: Bool = false) -> Int? {
        guard let found = find(key, in: bytes, within: range) else { return nil }
        var value = 0
        var position = found.upperBound
        while position < range.upperBound, bytes[position] == UInt8(ascii: " ") { position += 1 }
        let digitsStart = position
        while position < range.upperBound, bytes[position] >= 0x30, bytes[position] <= 0x39 {
            value = value.saturatingMultiplied(by: 10).saturatingAdded(Int(bytes[position] - 0x30))
            position += 1
        }
        guard position > digitsStart else { return nil }
        if roundingUp, position < range.upperBound, bytes[position] == UInt8(ascii: ".") {
            position += 1
            while position < range.upperBound, bytes[position] >= 0x30, bytes[position] <= 0x39 {
                if bytes[position] != 0x30 { return value.saturatingAdded(1) }
                position += 1
            }
        }
        return value
    }
}
