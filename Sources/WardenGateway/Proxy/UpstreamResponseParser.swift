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
        case chunked(ChunkedBody)
        case untilClose
    }

    /// The largest head accepted (NIO's default limit too).
    static let maxHeadBytes = 80 * 1024
    static let maxFields = 100

    private var state = State.idle
    private var answersHead = false
    /// Whether any byte of the expected response arrived.
    private(set) var receivedBytes = false
    /// Bytes of a head, a chunk-size line or trailers that arrived split across reads.
    private var held = HeldInput()

    /// A request went out: its answer comes next (a `HEAD` answer has no body).
    mutating func expectResponse(to method: HTTPMethod) {
        state = .head
        answersHead = method == .HEAD
        receivedBytes = false
        held.clear()
    }

    /// Whether the body being read ends when vLLM closes the connection (then the close is its end).
    var bodyEndsWithClose: Bool { if case .untilClose = state { true } else { false } }

    /// Reads what `buffer` holds, handing each part to `emit` as it completes; body parts are slices of `buffer`.
    mutating func parse(_ buffer: ByteBuffer, _ emit: (UpstreamResponsePart) -> Void) throws(Malformed) {
        var input = buffer
        if input.readableBytes > 0 { receivedBytes = true }
        input = held.merged(with: input)
        while input.readableBytes > 0 {
            switch state {
            case .idle:
                throw Malformed(description: "bytes from the model server with no request outstanding")
            case .head:
                guard let head = try takeHead(&input) else { return }
                try readHead(head, emit)
            case .fixed(let remaining):
                let part = input.readSlice(length: min(remaining, input.readableBytes))!
                emit(.body(part))
                if remaining == part.readableBytes { finish(emit) } else { state = .fixed(remaining: remaining - part.readableBytes) }
            case .chunked(var body):
                let step = try body.next(&input, held: &held) { Malformed(description: $0.reason) }
                state = .chunked(body)
                switch step {
                case .data(let part): emit(.body(part))
                case .end: finish(emit)
                case nil: return
                }
            case .untilClose:
                emit(.body(input))
                return
            }
        }
    }

    /// The head through its blank line, or nil with the input held for the next read.
    private mutating func takeHead(_ input: inout ByteBuffer) throws(Malformed) -> ByteBuffer? {
        do {
            return try held.line(from: &input, upTo: HeldInput.headEnd, limit: Self.maxHeadBytes)
        } catch {
            throw Malformed(description: "a head longer than \(error.limit) bytes")
        }
    }

    private mutating func readHead(_ bytes: ByteBuffer, _ emit: (UpstreamResponsePart) -> Void) throws(Malformed) {
        var head = try UpstreamHead(bytes)
        if (100..<200).contains(head.status.code) {
            // An interim answer (100 Continue): the final one follows.
            guard head.status.code != 101 else { throw Malformed(description: "an unexpected protocol switch") }
            return
        }
        let next: State
        if answersHead || head.status.code == 204 || head.status.code == 304 || head.contentLength == 0 {
            next = .idle
        } else if head.isChunked {
            next = .chunked(ChunkedBody())
        } else if let length = head.contentLength {
            next = .fixed(remaining: length)
        } else {
            next = .untilClose
            head.isKeepAlive = false
        }
        emit(.head(head))
        if case .idle = next { finish(emit) } else { state = next }
    }

    private mutating func finish(_ emit: (UpstreamResponsePart) -> Void) {
        state = .idle
        emit(.end)
    }
}
