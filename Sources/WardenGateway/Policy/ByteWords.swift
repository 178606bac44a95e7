/// Eight bytes at a time: tests on a word loaded from a buffer, exact about whether any byte matches (a match sends
/// the caller to its byte-by-byte loop, which finds which).
enum ByteWords {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highBits: UInt64 = 0x8080_8080_8080_8080

    /// Whether a byte of `word` is `byte`.
    static func contains(_ byte: UInt8, in word: UInt64) -> Bool {
        let folded = word ^ (UInt64(byte) &* ones)
        return (folded &- ones) & ~folded & highBits != 0
    }

    /// Whether a byte of `word` is below `limit` (at most 0x80).
    static func containsByte(below limit: UInt8, in word: UInt64) -> Bool {
        (word &- UInt64(limit) &* ones) & ~word & highBits != 0
    }
}

/// Non-negative numbers in decimal, written backwards into memory the caller measured, dividing only by the constant 10:
/// the response head, the upstream head and the access log each write several per request.
enum DecimalText {
    /// Digits of `value` (1 to 20).
    static func count(_ value: UInt) -> Int {
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        return digits
    }

    /// `value` in exactly `digits` bytes at `target`, zero-padded on the left (`digits` at least ``count(_:)``).
    static func write(_ value: UInt, digits: Int, to target: UnsafeMutableRawPointer) {
        var rest = value
        for index in stride(from: digits - 1, through: 0, by: -1) {
            target.storeBytes(of: UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10), toByteOffset: index, as: UInt8.self)
            rest /= 10
        }
    }
}
