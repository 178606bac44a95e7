import NIOCore

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

    enum Part {
        case head(ClientHead)
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
                let request = try Self.readHead(head)
                state = request.isChunked ? .chunked(ChunkedBody(maxSizeLines: Self.maxChunkLineBytes)) : .fixed(remaining: request.contentLength ?? 0)
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

    /// The head read (``ClientHead``) and where its body ends.
    private static func readHead(_ head: ByteBuffer) throws(Malformed) -> ClientHead {
        try head.withUnsafeReadableBytes { bytes throws(Malformed) in try ClientHead(bytes) }
    }
}
