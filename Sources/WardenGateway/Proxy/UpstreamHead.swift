import NIOCore
import NIOHTTP1

/// What ``UpstreamResponseParser`` delivers: vLLM's head, then its body in slices of the reads, then the end.
enum UpstreamResponsePart: Equatable {
    case head(UpstreamHead)
    case body(ByteBuffer)
    case end
}

/// vLLM's response head: the facts the gateway acts on, read once, and the field lines kept as the bytes they
/// arrived in (checked: token names, no control characters) to be copied to the client as they are — no `String`
/// or `HTTPHeaders` built per field, which cost more than the rest of the parse.
struct UpstreamHead: Equatable {
    var version: HTTPVersion
    var status: HTTPResponseStatus
    /// Whether vLLM's connection can carry another request.
    var isKeepAlive: Bool
    /// `content-type: text/event-stream`: metered event by event, and never forwarded with vLLM's length (the meter
    /// may drop its usage event, and a break appends an error event).
    var isEventStream = false
    /// The `metadata` field: usage of pooling responses sent as raw bytes.
    var metadata: String?
    /// `Content-Length`, when the body is framed by one.
    var contentLength: Int?
    var isChunked = false
    /// Lower-cased names a `Connection` field lists besides `close` and `keep-alive`: hop-by-hop for this message.
    var connectionNamed: [String] = []
    /// The field lines as vLLM sent them, CRLF between them.
    private(set) var fieldLines: ByteBuffer

    /// Reads a head (status line and field lines, without the blank line that ends it). Refused: an unsupported
    /// version, a bad status line, a field that is not `token: value` with printable bytes, a line folded onto the
    /// previous one, more than `maxFields` fields, a length that is not a number or repeated unequal, any transfer
    /// coding but `chunked`, and both framings at once.
    init(_ head: ByteBuffer, maxFields: Int = UpstreamResponseParser.maxFields) throws(UpstreamResponseParser.Malformed) {
        guard head.readableBytes > 0 else { throw .init(description: "an empty response head") }
        let statusEnd = head.withUnsafeReadableBytes { UsageScanner.find(HeldInput.lineEnd, in: $0, within: 0..<$0.count)?.lowerBound }
            ?? head.readableBytes
        (version, status) = try Self.statusLine(head.getSlice(at: head.readerIndex, length: statusEnd)!)
        isKeepAlive = version != .http1_0
        let fieldsStart = min(statusEnd + 2, head.readableBytes)
        let lines = head.getSlice(at: head.readerIndex + fieldsStart, length: head.readableBytes - fieldsStart)!
        fieldLines = lines
        var count = 0
        try lines.withUnsafeReadableBytes { bytes throws(UpstreamResponseParser.Malformed) in
            try FieldSyntax.forEachLine(in: bytes) { line throws(UpstreamResponseParser.Malformed) in
                count += 1
                guard count <= maxFields else { throw .init(description: "more than \(maxFields) response fields") }
                let (name, value) = try Self.split(line)
                try read(name: name, value: value)
            }
        }
        if isChunked, contentLength != nil { throw .init(description: "a body framed by both Content-Length and chunks") }
    }

    /// Each field line's name and the whole line (without its CRLF).
    func forEachField(_ body: (_ name: UnsafeRawBufferPointer, _ line: UnsafeRawBufferPointer) -> Void) {
        fieldLines.withUnsafeReadableBytes { bytes in
            FieldSyntax.forEachLine(in: bytes) { line in
                // Checked when the head was read: every line has a colon after a non-empty name.
                let colon = line.firstIndex(of: UInt8(ascii: ":"))!
                body(UnsafeRawBufferPointer(rebasing: line[..<colon]), line)
            }
        }
    }

    private mutating func read(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(UpstreamResponseParser.Malformed) {
        if HeaderPolicy.name(name, is: "content-length") {
            guard let parsed = FieldSyntax.decimal(value), contentLength == nil || contentLength == parsed else {
                throw .init(description: "an invalid or repeated Content-Length: \(String(decoding: value.prefix(64), as: UTF8.self))")
            }
            contentLength = parsed
        } else if HeaderPolicy.name(name, is: "transfer-encoding") {
            guard HeaderPolicy.name(value, is: "chunked"), !isChunked else {
                throw .init(description: "an unsupported Transfer-Encoding: \(String(decoding: value.prefix(64), as: UTF8.self))")
            }
            isChunked = true
        } else if HeaderPolicy.name(name, is: "connection") {
            FieldSyntax.forEachElement(of: value) { option in
                if HeaderPolicy.name(option, is: "close") {
                    isKeepAlive = false
                } else if HeaderPolicy.name(option, is: "keep-alive") {
                    if version == .http1_0 { isKeepAlive = true }
                } else {
                    connectionNamed.append(String(decoding: option, as: UTF8.self).lowercased())
                }
            }
        } else if HeaderPolicy.name(name, is: "content-type") {
            isEventStream = isEventStream || value.starts(with: "text/event-stream".utf8)
        } else if HeaderPolicy.name(name, is: "metadata"), metadata == nil {
            metadata = String(decoding: value, as: UTF8.self)
        }
    }

    private static func statusLine(_ line: ByteBuffer) throws(UpstreamResponseParser.Malformed) -> (HTTPVersion, HTTPResponseStatus) {
        try line.withUnsafeReadableBytes { bytes throws(UpstreamResponseParser.Malformed) -> (HTTPVersion, HTTPResponseStatus) in
            let isDigit = { (byte: UInt8) in byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
            guard bytes.count >= 12, bytes[8] == UInt8(ascii: " "), bytes.count == 12 || bytes[12] == UInt8(ascii: " "),
                  isDigit(bytes[9]), isDigit(bytes[10]), isDigit(bytes[11]),
                  bytes.dropFirst(13).allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
                throw .init(description: "an invalid status line: \(String(decoding: bytes.prefix(64), as: UTF8.self))")
            }
            let version: HTTPVersion
            if bytes.starts(with: "HTTP/1.1".utf8) {
                version = .http1_1
            } else if bytes.starts(with: "HTTP/1.0".utf8) {
                version = .http1_0
            } else {
                throw .init(description: "an unsupported HTTP version: \(String(decoding: bytes.prefix(8), as: UTF8.self))")
            }
            let code = Int(bytes[9] &- 48) * 100 + Int(bytes[10] &- 48) * 10 + Int(bytes[11] &- 48)
            guard code >= 100 else { throw .init(description: "an invalid status code: \(code)") }
            // The reason phrase is NIO's for known codes (no string built), vLLM's own otherwise.
            let known = HTTPResponseStatus(statusCode: code)
            let reason = bytes.count > 13 ? UnsafeRawBufferPointer(rebasing: bytes[13...]) : UnsafeRawBufferPointer(rebasing: bytes[0..<0])
            if reason.elementsEqual(known.reasonPhrase.utf8) { return (version, known) }
            return (version, HTTPResponseStatus(statusCode: code, reasonPhrase: String(decoding: reason, as: UTF8.self)))
        }
    }

    /// A field line's name and value, as ``FieldSyntax`` reads them.
    static func split(_ bytes: UnsafeRawBufferPointer) throws(UpstreamResponseParser.Malformed) -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer) {
        do {
            return try FieldSyntax.split(bytes)
        } catch {
            throw .init(description: "\(error.rawValue) (a response field)")
        }
    }
}
