/// The `x-ratelimit-*` fields of an answer, in OpenAI's names: kept as numbers and written straight into the
/// response head (six formatted strings per request cost more than the limits' own arithmetic). A window that
/// does not apply is nil.
struct RateLimitFields: Sendable, Equatable {
    struct Window: Sendable, Equatable {
        var limit: Int
        var remaining: Int
        /// Until the window is whole again.
        var reset: Duration
    }

    var requests: Window?
    var tokens: Window?
    var tokensDay: Window?
    var tokensMonth: Window?

    private typealias Names = (limit: StaticString, remaining: StaticString, reset: StaticString)
    private static let requestNames: Names = ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests")
    private static let tokenNames: Names = ("x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens")
    private static let dayNames: Names = ("x-ratelimit-limit-tokens-day", "x-ratelimit-remaining-tokens-day", "x-ratelimit-reset-tokens-day")
    private static let monthNames: Names = ("x-ratelimit-limit-tokens-month", "x-ratelimit-remaining-tokens-month", "x-ratelimit-reset-tokens-month")

    /// As name–value pairs: refusals carry them in their error.
    var fields: [(String, String)] {
        [(Self.requestNames, requests), (Self.tokenNames, tokens), (Self.dayNames, tokensDay), (Self.monthNames, tokensMonth)]
            .flatMap { names, window -> [(String, String)] in
                guard let window else { return [] }
                return [("\(names.limit)", String(window.limit)), ("\(names.remaining)", String(window.remaining)),
                        ("\(names.reset)", durationText(window.reset))]
            }
    }

    /// At most the bytes ``write(into:)`` adds: per window three lines of a name (at most 34 bytes), ": ", a
    /// value (at most 24) and CRLF.
    var measuredSize: Int {
        let windows = (requests == nil ? 0 : 1) + (tokens == nil ? 0 : 1) + (tokensDay == nil ? 0 : 1) + (tokensMonth == nil ? 0 : 1)
        return windows * 3 * (34 + 2 + 24 + 2)
    }

    /// The fields as head lines.
    func write(into head: inout HeadBytes) {
        if let requests { Self.write(Self.requestNames, requests, &head) }
        if let tokens { Self.write(Self.tokenNames, tokens, &head) }
        if let tokensDay { Self.write(Self.dayNames, tokensDay, &head) }
        if let tokensMonth { Self.write(Self.monthNames, tokensMonth, &head) }
    }

    private static func write(_ names: Names, _ window: Window, _ head: inout HeadBytes) {
        head.append(names.limit)
        head.append(": ")
        head.append(decimal: max(0, window.limit))
        head.append("\r\n")
        head.append(names.remaining)
        head.append(": ")
        head.append(decimal: max(0, window.remaining))
        head.append("\r\n")
        head.append(names.reset)
        head.append(": ")
        head.append(duration: window.reset)
        head.append("\r\n")
    }
}

/// A reset as OpenAI writes it: whole milliseconds, rounded up, as seconds (`2s`, `1.5s`, `0.001s`).
func durationText(_ duration: Duration) -> String {
    String(unsafeUninitializedCapacity: 24) { bytes in
        var head = HeadBytes(UnsafeMutableRawBufferPointer(bytes))
        head.append(duration: duration)
        return head.offset
    }
}

extension HeadBytes {
    /// A duration as ``durationText(_:)`` has it; at most 24 bytes. No `Double` arithmetic: it runs per request.
    mutating func append(duration: Duration) {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, attoseconds >= 0 else { return append("0s") }
        // Clamped: a reset is at most minutes away, and Int arithmetic must not overflow on an absurd one.
        var milliseconds = Int(min(seconds, 1_000_000_000_000)) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
        if attoseconds % 1_000_000_000_000_000 != 0 { milliseconds += 1 }
        append(decimal: milliseconds / 1000)
        var fraction = milliseconds % 1000
        if fraction != 0 {
            append(".")
            var divisor = 100
            while fraction != 0 {
                append(digit: fraction / divisor)
                fraction %= divisor
                divisor /= 10
            }
        }
        append("s")
    }

    private mutating func append(digit: Int) {
        append(byte: UInt8(ascii: "0") &+ UInt8(digit))
    }
}
