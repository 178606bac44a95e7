#if canImport(Glibc)
import Glibc
#endif

/// HTTP/1.1 syntax both parsers hold to — the client's requests (``ClientRequestParser``) and vLLM's responses
/// (``UpstreamResponseParser``): field lines, lengths and chunk sizes (RFC 9110 §5, RFC 9112 §6–7).
enum FieldSyntax {
    enum Violation: String, Error {
        case noName = "a field without a name"
        case invalidName = "a field name that is not a token"
        case controlCharacter = "a control character in a field value"
    }

    /// A field line's name and its value (optional whitespace around it trimmed). The name must be a token, so a
    /// line folded onto the previous one (starting with whitespace) is refused; the value may hold no control
    /// character but a tab.
    static func split(_ line: UnsafeRawBufferPointer) throws(Violation) -> (name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        guard let colon = colonIndex(line), colon > 0 else { throw .noName }
        for index in 0..<colon where !isToken(line[index]) { throw .invalidName }
        let value = trimmedValue(line, after: colon)
        guard allFieldText(value) else { throw .controlCharacter }
        return (UnsafeRawBufferPointer(rebasing: line[..<colon]), value)
    }

    /// Whether `bytes` are exactly `text` (letter case included).
    static func bytes(_ bytes: UnsafeRawBufferPointer, are text: StaticString) -> Bool {
        guard bytes.count == text.utf8CodeUnitCount else { return false }
        guard let base = bytes.baseAddress else { return true }
        return memcmp(base, text.utf8Start, bytes.count) == 0
    }

    /// A line ``split(_:)`` accepted before, split again without its checks.
    static func splitChecked(_ line: UnsafeRawBufferPointer) -> (name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        let colon = colonIndex(line) ?? 0
        return (UnsafeRawBufferPointer(rebasing: line[..<colon]), trimmedValue(line, after: colon))
    }

    private static func colonIndex(_ line: UnsafeRawBufferPointer) -> Int? {
        guard let base = line.baseAddress, let found = memchr(base, Int32(UInt8(ascii: ":")), line.count) else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }

    private static func trimmedValue(_ line: UnsafeRawBufferPointer, after colon: Int) -> UnsafeRawBufferPointer {
        var start = colon + 1, end = line.count
        while start < end, line[start] == 0x20 || line[start] == 0x09 { start += 1 }
        while end > start, line[end - 1] == 0x20 || line[end - 1] == 0x09 { end -= 1 }
        return UnsafeRawBufferPointer(rebasing: line[min(start, end)..<end])
    }

    /// Whether every byte is ``isFieldText(_:)``, eight at a time while no word holds a byte below 0x20 or a DEL
    /// (a tab sends the rest of the value to the byte-by-byte check).
    static func allFieldText(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        while index + 8 <= bytes.count {
            let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            guard !ByteWords.containsByte(below: 0x20, in: word), !ByteWords.contains(0x7F, in: word) else { break }
            index += 8
        }
        while index < bytes.count {
            guard isFieldText(bytes[index]) else { return false }
            index += 1
        }
        return true
    }

    /// Each CRLF-separated line of a head (its blank line already cut off), in order. A bare CR or LF stays inside
    /// its line, where the checks on request lines, status lines and fields refuse it.
    static func forEachLine<E: Error>(in bytes: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws(E) -> Void) throws(E) {
        var start = 0
        while start < bytes.count {
            let end = UsageScanner.find(HeldInput.lineEnd, in: bytes, within: start..<bytes.count)?.lowerBound ?? bytes.count
            try body(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
            start = end + 2
        }
    }

    /// Each element of a comma-separated list value (RFC 9110 §5.6.1), whitespace around it trimmed, empty ones skipped.
    static func forEachElement(of list: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        while start <= list.count {
            let end = list[start...].firstIndex(of: UInt8(ascii: ",")) ?? list.count
            var first = start, last = end
            while first < last, list[first] == 0x20 || list[first] == 0x09 { first += 1 }
            while last > first, list[last - 1] == 0x20 || list[last - 1] == 0x09 { last -= 1 }
            if first < last { body(UnsafeRawBufferPointer(rebasing: list[first..<last])) }
            start = end + 1
        }
    }

    /// RFC 9110 `tchar`: a bit per ASCII byte (letters, digits and ``!#$%&'*+-.^_`|~``), no table to load.
    static func isToken(_ byte: UInt8) -> Bool {
        let bits: UInt64 = byte < 64 ? 0x03FF_6CFA_0000_0000 : byte < 128 ? 0x57FF_FFFF_C7FF_FFFE : 0
        return bits >> UInt64(byte & 63) & 1 == 1
    }

    /// A tab or any byte but a control character.
    static func isFieldText(_ byte: UInt8) -> Bool { byte == 0x09 || (byte >= 0x20 && byte != 0x7F) }

    /// A `Content-Length` value: 1 to 18 decimal digits, nothing else.
    static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// A chunk-size line: 1 to 15 hex digits (no sign, prefix or inner space), then nothing, or optional whitespace
    /// and `;` extensions of field text (ignored). Whitespace after the size with no `;` is refused.
    static func chunkSize(_ line: UnsafeRawBufferPointer) -> Int? {
        var size = 0, digits = 0
        while digits < line.count, let value = hexValue(line[digits]) {
            size = size << 4 | value
            digits += 1
        }
        guard digits > 0, digits <= 15 else { return nil }
        var rest = digits
        while rest < line.count, line[rest] == 0x20 || line[rest] == 0x09 { rest += 1 }
        // Whitespace only before an extension's `;` (BWS), never trailing the size.
        let ends = rest == digits && rest == line.count
        guard ends || (rest < line.count && line[rest] == UInt8(ascii: ";")), line[digits...].allSatisfy(isFieldText) else { return nil }
        return size
    }

    /// The value of a hex digit in either case; `nil` for any other byte.
    static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A")) + 10
        default: nil
        }
    }
}

import NIOCore

/// What an HTTP parser has read but not yet used — a head, chunk-size line or trailer split across reads, or a
/// client's requests pipelined behind one still being answered. Bytes from a read are copied (a slice would keep the
/// whole read buffer alive, per connection, for as long as a stream runs); bytes already held grow in place, and a
/// line's delimiter is searched for only in what arrived since the last search — a head sent a byte at a time
/// costs each byte once, not the whole head again per read.
struct HeldInput {
    /// A line passed its limit before its delimiter arrived.
    struct LineTooLong: Error {
        var limit: Int
    }

    private var held: ByteBuffer?
    /// The buffer ``merged(with:)`` last returned is the held one: holding it again keeps it rather than a copy.
    private var mergedIsHeld = false
    /// Where, in the held buffer's indices, the search for a delimiter got to without finding one.
    private var searchedUpTo = 0

    var isEmpty: Bool { held == nil }

    mutating func clear() {
        held = nil
        searchedUpTo = 0
    }

    /// `buffer` after whatever was held (nothing is held afterwards).
    mutating func merged(with buffer: ByteBuffer) -> ByteBuffer {
        guard var earlier = held else {
            mergedIsHeld = false
            searchedUpTo = 0
            return buffer
        }
        held = nil
        earlier.writeImmutableBuffer(buffer)
        mergedIsHeld = true
        return earlier
    }

    /// Keeps `input` (what is left of the buffer ``merged(with:)`` returned) for the next read.
    mutating func hold(_ input: ByteBuffer) {
        searchedUpTo = 0
        guard input.readableBytes > 0 else { return }
        if mergedIsHeld {
            var kept = input
            // Bytes before the reader index are spent: dropped once they are most of the buffer.
            if kept.readerIndex > 4096, kept.readerIndex > kept.readableBytes { kept.discardReadBytes() }
            held = kept
        } else {
            var copy = ByteBufferAllocator().buffer(capacity: input.readableBytes)
            copy.writeImmutableBuffer(input)
            held = copy
        }
    }

    /// The bytes through the next `delimiter` (without it), taken from `input`; or nil, with all of `input` held for
    /// the next read.
    mutating func line(from input: inout ByteBuffer, upTo delimiter: [UInt8], limit: Int) throws(LineTooLong) -> ByteBuffer? {
        // A delimiter may straddle the last search's end: it restarts that many bytes before it.
        let resume = mergedIsHeld ? max(0, searchedUpTo - input.readerIndex - (delimiter.count - 1)) : 0
        let found = input.withUnsafeReadableBytes { UsageScanner.find(delimiter, in: $0, within: min(resume, $0.count)..<$0.count)?.lowerBound }
        guard let offset = found else {
            // What is held may end with part of the delimiter.
            guard input.readableBytes < limit + delimiter.count else { throw LineTooLong(limit: limit) }
            hold(input)
            searchedUpTo = held?.writerIndex ?? 0
            input.moveReaderIndex(forwardBy: input.readableBytes)
            return nil
        }
        searchedUpTo = 0
        guard offset <= limit else { throw LineTooLong(limit: limit) }
        let line = input.readSlice(length: offset)!
        input.moveReaderIndex(forwardBy: delimiter.count)
        return line
    }

    static let headEnd = Array("\r\n\r\n".utf8)
    static let lineEnd = Array("\r\n".utf8)
}
