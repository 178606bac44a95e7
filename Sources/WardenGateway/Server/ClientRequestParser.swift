import NIOCore
import NIOHTTP1

/// Clients' requests parsed from the connection's bytes: request line, fields, then a body delimited by
/// `Content-Length` or chunks. Strict where a proxy must be, because whatever it lets through reaches vLLM framed
/// the gateway's way: a body framed two ways or by a repeated length, any transfer coding but `chunked`, a field
/// folded over lines, a bare CR or LF, a control character, a chunk size that is not plain hex — each refused, and
/// the connection closed. A pure value: bytes in, request parts out; it replaces NIO's decoder, whose callbacks,
/// part boxing and pipeline hop cost more than the rest of the head's handling.
struct ClientRequestParser {
    /// Why the client's bytes cannot be read as a request.
    struct Malformed: Error, Equatable, CustomStringConvertible {
        var description: String
        /// The head passed ``ClientRequestParser/maxHeadBytes``: 431 rather than 400.
        var headTooLarge = false
    }

    enum Part: Equatable {
        case head(HTTPRequestHead)
        case body(ByteBuffer)
        case end
    }

    private enum State {
        case head
        case fixed(remaining: Int)
        case chunked(ChunkedBody)
    }

    /// The largest head accepted, request line included (NIO's decoder's limit too).
    static let maxHeadBytes = 80 * 1024
    /// All chunk-size lines of one body together: sizes with extensions, which RFC 9112 lets a server limit.
    static let maxChunkLineBytes = 16 * 1024

    private var state = State.head
    /// Bytes of a head, chunk-size line or trailer that arrived split across reads, or the requests behind one
    /// whose answer is still pending.
    private var held = HeldInput()
    /// How much of the incomplete head held has been checked for bare line ends.
    private var checkedHeadBytes = 0

    /// Reads `buffer` after whatever was held, handing each part to `emit` (body parts are slices of the input).
    /// `emit` returning false stops the parse: the rest is held until the next call.
    mutating func parse(_ buffer: ByteBuffer, _ emit: (Part) -> Bool) throws(Malformed) {
        var input = held.merged(with: buffer)
        while input.readableBytes > 0 {
            switch state {
            case .head:
                // Empty lines before a request line are ignored (RFC 9112 §2.2).
                while input.readableBytes >= 2, input.getInteger(at: input.readerIndex, as: UInt16.self) == 0x0D0A {
                    input.moveReaderIndex(forwardBy: 2)
                }
                let unread = input
                guard let head = try takeHead(&input) else {
                    // A head cut by bare LFs would never end with CRLF CRLF: refused now, not at the size limit.
                    try checkLineEnds(unread)
                    return
                }
                checkedHeadBytes = 0
                let (request, framing) = try Self.readHead(head)
                switch framing {
                case .chunked: state = .chunked(ChunkedBody(maxSizeLines: Self.maxChunkLineBytes))
                case .length(let length): state = .fixed(remaining: length)
                }
                guard emit(.head(request)) else { return held.hold(input) }
                if case .fixed(remaining: 0) = state, !finish(emit) { return held.hold(input) }
            case .fixed(let remaining):
                let part = input.readSlice(length: min(remaining, input.readableBytes))!
                state = .fixed(remaining: remaining - part.readableBytes)
                guard emit(.body(part)) else { return held.hold(input) }
                if remaining == part.readableBytes, !finish(emit) { return held.hold(input) }
            case .chunked(var body):
                let step = try body.next(&input, held: &held) { Malformed(description: $0.reason, headTooLarge: $0.trailersTooLarge) }
                state = .chunked(body)
                switch step {
                case .data(let part):
                    guard emit(.body(part)) else { return held.hold(input) }
                case .end:
                    guard finish(emit) else { return held.hold(input) }
                case nil:
                    return
                }
            }
        }
    }

    /// Whether bytes wait: part of a request still arriving, or requests behind a parse that was stopped.
    var holdsBytes: Bool { !held.isEmpty }

    /// Keeps bytes that arrive while a request is being answered, unparsed, for the next ``parse(_:_:)``.
    mutating func keep(_ buffer: ByteBuffer) {
        held.hold(held.merged(with: buffer))
    }

    /// Looks for a LF without its CR, or a CR without its LF, in the part of an incomplete head not looked at before
    /// (each byte once, however slowly the head arrives).
    private mutating func checkLineEnds(_ partial: ByteBuffer) throws(Malformed) {
        let bareLineEnd = partial.withUnsafeReadableBytes { bytes in
            (max(1, checkedHeadBytes)..<max(1, bytes.count)).contains { (bytes[$0] == 0x0A) != (bytes[$0 - 1] == 0x0D) }
                || bytes.first == 0x0A
        }
        guard !bareLineEnd else { throw Malformed(description: "a bare CR or LF in the head") }
        checkedHeadBytes = partial.readableBytes
    }

    private mutating func finish(_ emit: (Part) -> Bool) -> Bool {
        state = .head
        return emit(.end)
    }

    /// The head through its blank line, or nil with the input held for the next read.
    private mutating func takeHead(_ input: inout ByteBuffer) throws(Malformed) -> ByteBuffer? {
        do {
            return try held.line(from: &input, upTo: HeldInput.headEnd, limit: Self.maxHeadBytes)
        } catch {
            throw Malformed(description: "a head longer than \(error.limit) bytes", headTooLarge: true)
        }
    }

    private enum Framing {
        case length(Int)
        case chunked
    }

    /// The request line and fields. `Content-Length` must be digits and appear once; `Transfer-Encoding` only
    /// `chunked`, once, from an HTTP/1.1 client, and never beside a length.
    private static func readHead(_ head: ByteBuffer) throws(Malformed) -> (HTTPRequestHead, Framing) {
        try head.withUnsafeReadableBytes { bytes throws(Malformed) -> (HTTPRequestHead, Framing) in
            let lineEnd = UsageScanner.find(HeldInput.lineEnd, in: bytes, within: 0..<bytes.count)?.lowerBound ?? bytes.count
            let (method, uri, version) = try requestLine(UnsafeRawBufferPointer(rebasing: bytes[..<lineEnd]))
            var fields: [(String, String)] = []
            fields.reserveCapacity(8)
            var length: Int?
            var chunked = false
            try FieldSyntax.forEachLine(in: UnsafeRawBufferPointer(rebasing: bytes[min(lineEnd + 2, bytes.count)...])) { line throws(Malformed) in
                let (name, value) = try field(line)
                if HeaderPolicy.name(name, is: "content-length") {
                    guard length == nil else { throw Malformed(description: "a repeated Content-Length") }
                    guard let parsed = FieldSyntax.decimal(value) else { throw Malformed(description: "an invalid Content-Length") }
                    length = parsed
                } else if HeaderPolicy.name(name, is: "transfer-encoding") {
                    guard !chunked, HeaderPolicy.name(value, is: "chunked") else {
                        throw Malformed(description: "a Transfer-Encoding other than one chunked")
                    }
                    chunked = true
                }
                fields.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
            }
            if chunked {
                guard length == nil else { throw Malformed(description: "a body framed by both Content-Length and chunks") }
                guard version == .http1_1 else { throw Malformed(description: "Transfer-Encoding from an HTTP/1.0 client") }
            }
            let request = HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(fields))
            return (request, chunked ? .chunked : .length(length ?? 0))
        }
    }

    /// `method SP request-target SP HTTP-version`: the method a token, the target visible ASCII, the version 1.0 or 1.1.
    private static func requestLine(_ line: UnsafeRawBufferPointer) throws(Malformed) -> (HTTPMethod, String, HTTPVersion) {
        guard let firstSpace = line.firstIndex(of: UInt8(ascii: " ")), firstSpace > 0,
              let lastSpace = line.lastIndex(of: UInt8(ascii: " ")), lastSpace > firstSpace + 1 else {
            throw Malformed(description: "an invalid request line")
        }
        let methodBytes = UnsafeRawBufferPointer(rebasing: line[..<firstSpace])
        let target = UnsafeRawBufferPointer(rebasing: line[(firstSpace + 1)..<lastSpace])
        let versionBytes = UnsafeRawBufferPointer(rebasing: line[(lastSpace + 1)...])
        guard !methodBytes.isEmpty, methodBytes.allSatisfy(FieldSyntax.isToken) else { throw Malformed(description: "an invalid method") }
        guard target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw Malformed(description: "an invalid request target") }
        let version: HTTPVersion
        if versionBytes.elementsEqual("HTTP/1.1".utf8) {
            version = .http1_1
        } else if versionBytes.elementsEqual("HTTP/1.0".utf8) {
            version = .http1_0
        } else {
            throw Malformed(description: "an unsupported HTTP version")
        }
        let method: HTTPMethod
        if methodBytes.elementsEqual("POST".utf8) {
            method = .POST
        } else if methodBytes.elementsEqual("GET".utf8) {
            method = .GET
        } else {
            method = HTTPMethod(rawValue: String(decoding: methodBytes, as: UTF8.self))
        }
        return (method, String(decoding: target, as: UTF8.self), version)
    }

    private static func field(_ line: UnsafeRawBufferPointer) throws(Malformed) -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer) {
        do {
            return try FieldSyntax.split(line)
        } catch {
            throw Malformed(description: error.rawValue)
        }
    }
}
