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
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else { throw .noName }
        for index in 0..<colon where !isToken(line[index]) { throw .invalidName }
        var start = colon + 1, end = line.count
        while start < end, line[start] == 0x20 || line[start] == 0x09 { start += 1 }
        while end > start, line[end - 1] == 0x20 || line[end - 1] == 0x09 { end -= 1 }
        for index in start..<end where !isFieldText(line[index]) { throw .controlCharacter }
        return (UnsafeRawBufferPointer(rebasing: line[..<colon]), UnsafeRawBufferPointer(rebasing: line[start..<end]))
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
    /// and `;` extensions of field text (ignored).
    static func chunkSize(_ line: UnsafeRawBufferPointer) -> Int? {
        var size = 0, digits = 0
        while digits < line.count, let value = hexValue(line[digits]) {
            size = size << 4 | value
            digits += 1
        }
        guard digits > 0, digits <= 15 else { return nil }
        var rest = digits
        while rest < line.count, line[rest] == 0x20 || line[rest] == 0x09 { rest += 1 }
        guard rest == line.count || line[rest] == UInt8(ascii: ";"), line[digits...].allSatisfy(isFieldText) else { return nil }
        return size
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
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
/// client's requests pipelined behind one still being answered — copied: a slice would keep the whole read buffer
/// alive, per connection, for as long as a stream runs.
struct HeldInput {
    /// A line passed its limit before its delimiter arrived.
    struct LineTooLong: Error {
        var limit: Int
    }

    private var held: ByteBuffer?

    var isEmpty: Bool { held == nil }

    mutating func clear() { held = nil }

    /// `buffer` after whatever was held (nothing is held afterwards).
    mutating func merged(with buffer: ByteBuffer) -> ByteBuffer {
        guard var earlier = held else { return buffer }
        held = nil
        earlier.writeImmutableBuffer(buffer)
        return earlier
    }

    mutating func hold(_ input: ByteBuffer) {
        guard input.readableBytes > 0 else { return }
        var copy = ByteBufferAllocator().buffer(capacity: input.readableBytes)
        copy.writeImmutableBuffer(input)
        held = copy
    }

    /// The bytes through the next `delimiter` (without it), taken from `input`; or nil, with all of `input` held for
    /// the next read.
    mutating func line(from input: inout ByteBuffer, upTo delimiter: [UInt8], limit: Int) throws(LineTooLong) -> ByteBuffer? {
        let found = input.withUnsafeReadableBytes { UsageScanner.find(delimiter, in: $0, within: 0..<$0.count)?.lowerBound }
        guard let offset = found else {
            // What is held may end with part of the delimiter.
            guard input.readableBytes < limit + delimiter.count else { throw LineTooLong(limit: limit) }
            hold(input)
            input.moveReaderIndex(forwardBy: input.readableBytes)
            return nil
        }
        guard offset <= limit else { throw LineTooLong(limit: limit) }
        let line = input.readSlice(length: offset)!
        input.moveReaderIndex(forwardBy: delimiter.count)
        return line
    }

    static let headEnd = Array("\r\n\r\n".utf8)
    static let lineEnd = Array("\r\n".utf8)
}
