import NIOCore
import WardenJSON

/// Finds vLLM's `usage` object in response bytes without parsing the whole body: it sits at the end of
/// non-streaming answers and in its own SSE event.
enum UsageScanner {
    private static let marker = Array(#""usage":{"#.utf8)

    /// The last `usage` in `buffer`, as (prompt, completion) tokens.
    static func lastUsage(in buffer: ByteBuffer) -> (prompt: Int, completion: Int)? {
        buffer.withUnsafeReadableBytes { bytes -> (Int, Int)? in
            guard bytes.count >= marker.count else { return nil }
            var start = bytes.count - marker.count
            while start >= 0 {
                if bytes[start] == marker[0], (0..<marker.count).allSatisfy({ bytes[start + $0] == marker[$0] }) {
                    let open = start + marker.count - 1
                    var depth = 0
                    var end = open
                    while end < bytes.count {
                        if bytes[end] == UInt8(ascii: "{") { depth += 1 }
                        if bytes[end] == UInt8(ascii: "}") { depth -= 1; if depth == 0 { break } }
                        end += 1
                    }
                    guard end < bytes.count, let object = try? JSONValue.parse(bytes[open...end]),
                          let prompt = object["prompt_tokens"]?.intValue, let completion = object["completion_tokens"]?.intValue else { return nil }
                    return (prompt, completion)
                }
                start -= 1
            }
            return nil
        }
    }
}
