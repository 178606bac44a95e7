import NIOCore
import NIOHTTP1

/// vLLM's responses parsed from the connection's bytes: a status line, fields, then a body delimited by
/// `Content-Length`, chunks, or the close. uvicorn's answers are simple, and this is strict where a proxy must be —
/// a body framed two ways, a field folded over lines, a bare LF or a control character ends the connection — while
/// costing a fraction of NIO's general decoder and its pipeline hops. A pure value: bytes in, response parts out.
struct UpstreamResponseParser {
    /// Why vLLM's bytes cannot be read as a response.
    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    private enum State {
        /// No request is waiting for an answer: bytes now are a protocol error.
        case idle
        case head
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
    }

    /// The largest head accepted (NIO's default limit too).
    static let maxHeadBytes = 80 * 1024
    static let maxFields = 100

    private var state = State.idle
    private var answersHead = false
    /// Whether any byte of the expected response arrived.
    private(set) var receivedBytes = false
    private var trailerLines = 0
    /// Bytes of a head, a chunk-size line or trailers that arrived split across reads.
    private var partial: ByteBuffer?

    /// A request went out: its answer comes next (a `HEAD` answer has no body).
    mutating func expectResponse(to method: HTTPMethod) {
        state = .head
        answersHead = method == .HEAD
        receivedBytes = false
        partial = nil
    }

    /// Whether the body being read ends when vLLM closes the connection (then the close is its end).
    var bodyEndsWithClose: Bool { if case .untilClose = state { true } else { false } }

    /// Reads what `buffer` holds, handing each part to `emit` as it completes; body parts are slices of `buffer`.
    mutating func parse(_ buffer: ByteBuffer, _ emit: (HTTPClientResponsePart) -> Void) throws(Malformed) {
        var input = buffer
        if input.readableBytes > 0 { receivedBytes = true }
        if var held = partial {
            partial = nil
            held.writeBuffer(&input)
            input = held
        }
        while input.readableBytes > 0 {
            switch state {
            case .idle:
                throw Malformed(description: "bytes from the model server with no request outstanding")
            case .head:
                guard let head = try takeLine(&input, upTo: Self.headEnd, limit: Self.maxHeadBytes) else { return }
                try readHead(head, emit)
            case .fixed(let remaining):
                let part = input.readSlice(length: min(remaining, input.readableBytes))!
                emit(.body(part))
                if remaining == part.readableBytes { finish(emit) } else { state = .fixed(remaining: remaining - part.readableBytes) }
            case .chunkSize:
                guard let line = try takeLine(&input, upTo: Self.lineEnd, limit: 1024) else { return }
                let size = try Self.chunkSize(line)
                trailerLines = 0
                state = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                let part = input.readSlice(length: min(remaining, input.readableBytes))!
                emit(.body(part))
                state = remaining == part.readableBytes ? .chunkDataEnd : .chunkData(remaining: remaining - part.readableBytes)
            case .chunkDataEnd:
                guard input.readableBytes >= 2 else { return hold(input) }
                guard input.readInteger(as: UInt16.self) == 0x0D0A else { throw Malformed(description: "a chunk not followed by CRLF") }
                state = .chunkSize
            case .trailers:
                guard let line = try takeLine(&input, upTo: Self.lineEnd, limit: Self.maxHeadBytes) else { return }
                guard line.readableBytes > 0 else {
                    finish(emit)
                    continue
                }
                trailerLines += 1
                guard trailerLines <= Self.maxFields else { throw Malformed(description: "more than \(Self.maxFields) trailer fields") }
                try Self.checkField(line)
            case .untilClose:
                emit(.body(input))
                return
            }
        }
    }

    private static let headEnd = Array("\r\n\r\n".utf8)
    private static let lineEnd = Array("\r\n".utf8)

    /// The part through the next `delimiter` (without it), or nil with the rest held for the next read.
    private mutating func takeLine(_ input: inout ByteBuffer, upTo delimiter: [UInt8], limit: Int) throws(Malformed) -> ByteBuffer? {
        let found = input.withUnsafeReadableBytes { UsageScanner.find(delimiter, in: $0, within: 0..<$0.count)?.lowerBound }
        guard let offset = found else {
            // What is held may end with part of the delimiter.
            guard input.readableBytes < limit + delimiter.count else {
                throw Malformed(description: "a head or chunk line longer than \(limit) bytes")
            }
            hold(input)
            input.moveReaderIndex(forwardBy: input.readableBytes)
            return nil
        }
        guard offset <= limit else { throw Malformed(description: "a head or chunk line longer than \(limit) bytes") }
        let line = input.readSlice(length: offset)!
        input.moveReaderIndex(forwardBy: delimiter.count)
        return line
    }

    /// Keeps the unread rest for the next read, copied: a slice would keep the whole read buffer alive, per
    /// connection, for as long as a stream runs.
    private mutating func hold(_ input: ByteBuffer) {
        var copy = ByteBufferAllocator().buffer(capacity: input.readableBytes)
        copy.writeImmutableBuffer(input)
        partial = copy
    }

    private mutating func readHead(_ head: ByteBuffer, _ emit: (HTTPClientResponsePart) -> Void) throws(Malformed) {
        var lines = head
        guard let statusLine = Self.nextLine(&lines) else { throw Malformed(description: "an empty response head") }
        let (version, status) = try Self.statusLine(statusLine)
        var fields: [(String, String)] = []
        var length: Int?
        var chunked = false
        var close = version == .http1_0
        while let line = Self.nextLine(&lines) {
            guard fields.count < Self.maxFields else { throw Malformed(description: "more than \(Self.maxFields) response fields") }
            let (name, value) = try Self.checkField(line)
            if HeaderPolicy.name(name, is: "content-length") {
                guard let parsed = Self.decimal(value), length == nil || length == parsed else {
                    throw Malformed(description: "an invalid or repeated Content-Length: \(value)")
                }
                // An equal repeat is accepted and kept once.
                if length != nil { continue }
                length = parsed
            } else if HeaderPolicy.name(name, is: "transfer-encoding") {
                guard HeaderPolicy.name(value, is: "chunked"), !chunked else { throw Malformed(description: "an unsupported Transfer-Encoding: \(value)") }
                chunked = true
            } else if HeaderPolicy.name(name, is: "connection") {
                for token in value.split(separator: ",") {
                    let option = String(token.trimmingSpaces())
                    if HeaderPolicy.name(option, is: "close") {
                        close = true
                    } else if HeaderPolicy.name(option, is: "keep-alive"), version == .http1_0 {
                        close = false
                    }
                }
            }
            fields.append((name, value))
        }
        if chunked, length != nil { throw Malformed(description: "a body framed by both Content-Length and chunks") }
        if (100..<200).contains(status.code) {
            // An interim answer (100 Continue): the final one follows.
            guard status.code != 101 else { throw Malformed(description: "an unexpected protocol switch") }
            return
        }
        let next: State
        if answersHead || status.code == 204 || status.code == 304 || length == 0 {
            next = .idle
        } else if chunked {
            next = .chunkSize
        } else if let length {
            next = .fixed(remaining: length)
        } else {
            next = .untilClose
            close = true
        }
        // What `HTTPResponseHead.isKeepAlive` reads: whether the connection can carry another request.
        if close { fields.append(("connection", "close")) }
        emit(.head(HTTPResponseHead(version: version, status: status, headers: HTTPHeaders(fields))))
        if case .idle = next { finish(emit) } else { state = next }
    }

    private mutating func finish(_ emit: (HTTPClientResponsePart) -> Void) {
        state = .idle
        emit(.end(nil))
    }

    /// The next CRLF-separated line of a head; a bare LF or CR anywhere else is refused by ``checkField``.
    private static func nextLine(_ lines: inout ByteBuffer) -> ByteBuffer? {
        guard lines.readableBytes > 0 else { return nil }
        let end = lines.withUnsafeReadableBytes { UsageScanner.find(lineEnd, in: $0, within: 0..<$0.count)?.lowerBound } ?? lines.readableBytes
        let line = lines.readSlice(length: end)!
        lines.moveReaderIndex(forwardBy: min(2, lines.readableBytes))
        return line
    }

    private static func statusLine(_ line: ByteBuffer) throws(Malformed) -> (HTTPVersion, HTTPResponseStatus) {
        try line.withUnsafeReadableBytes { bytes throws(Malformed) -> (HTTPVersion, HTTPResponseStatus) in
            let isDigit = { (byte: UInt8) in byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
            guard bytes.count >= 12, bytes[8] == UInt8(ascii: " "), bytes.count == 12 || bytes[12] == UInt8(ascii: " "),
                  isDigit(bytes[9]), isDigit(bytes[10]), isDigit(bytes[11]),
                  bytes.dropFirst(13).allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
                throw Malformed(description: "an invalid status line: \(String(decoding: bytes.prefix(64), as: UTF8.self))")
            }
            let version: HTTPVersion
            if bytes.starts(with: "HTTP/1.1".utf8) {
                version = .http1_1
            } else if bytes.starts(with: "HTTP/1.0".utf8) {
                version = .http1_0
            } else {
                throw Malformed(description: "an unsupported HTTP version: \(String(decoding: bytes.prefix(8), as: UTF8.self))")
            }
            let code = Int(bytes[9] &- 48) * 100 + Int(bytes[10] &- 48) * 10 + Int(bytes[11] &- 48)
            guard code >= 100 else { throw Malformed(description: "an invalid status code: \(code)") }
            // The reason phrase is NIO's for known codes (no string built), vLLM's own otherwise.
            let known = HTTPResponseStatus(statusCode: code)
            let reason = bytes.count > 13 ? UnsafeRawBufferPointer(rebasing: bytes[13...]) : UnsafeRawBufferPointer(rebasing: bytes[0..<0])
            if reason.elementsEqual(known.reasonPhrase.utf8) { return (version, known) }
            return (version, HTTPResponseStatus(statusCode: code, reasonPhrase: String(decoding: reason, as: UTF8.self)))
        }
    }

    /// A field line as name and value (optional whitespace around the value trimmed). The name must be a token;
    /// the value may hold no control character but a tab. A line starting with whitespace (obs-fold) is refused.
    @discardableResult
    private static func checkField(_ line: ByteBuffer) throws(Malformed) -> (String, String) {
        try line.withUnsafeReadableBytes { bytes throws(Malformed) -> (String, String) in
            guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), colon > 0 else { throw Malformed(description: "a response field without a name") }
            for byte in bytes[..<colon] where !isTokenByte(byte) {
                throw Malformed(description: "a response field name with byte \(byte)")
            }
            var start = colon + 1, end = bytes.count
            while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
            while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
            for byte in bytes[start..<end] where byte != 0x09 && (byte < 0x20 || byte == 0x7F) {
                throw Malformed(description: "a control character in a response field value")
            }
            return (String(decoding: UnsafeRawBufferPointer(rebasing: bytes[..<colon]), as: UTF8.self),
                    String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self))
        }
    }

    /// RFC 9110 `tchar`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    private static func decimal(_ text: String) -> Int? {
        guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int(text)
    }

    /// A chunk-size line: hex digits, then optional extensions after `;` (ignored).
    private static func chunkSize(_ line: ByteBuffer) throws(Malformed) -> Int {
        let bytes = Array(line.readableBytesView)
        let digits = bytes.prefix { $0 != UInt8(ascii: ";") && $0 != 0x20 && $0 != 0x09 }
        // After the digits: nothing, or optional whitespace and `;` extensions.
        let rest = bytes.dropFirst(digits.count).drop { $0 == 0x20 || $0 == 0x09 }
        guard !digits.isEmpty, digits.count <= 15, rest.first.map({ $0 == UInt8(ascii: ";") }) ?? true,
              bytes.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }),
              let size = Int(String(decoding: digits, as: UTF8.self), radix: 16), size >= 0,
              digits.allSatisfy({ $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "-") }) else {
            throw Malformed(description: "an invalid chunk size line")
        }
        return size
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var trimmed = self
        while trimmed.first == " " || trimmed.first == "\t" { trimmed.removeFirst() }
        while trimmed.last == " " || trimmed.last == "\t" { trimmed.removeLast() }
        return trimmed
    }
}
