import NIOCore
import NIOHTTP1

/// One response to a client, framed by the gateway itself. NIO's response encoder and server pipeline handler are
/// not on the gateway's pipelines: between them they cost more instructions per request than admission, and the
/// pipeline handler withheld reads while each response was pending, so every request cost two `epoll_ctl` calls
/// to disarm and re-arm the socket. ``GatewayHTTPHandler`` keeps requests in order itself.
struct ClientResponse {
    /// How the body is delimited on the wire.
    enum Framing: Equatable {
        /// The fields carry `Content-Length`: body bytes go out as they are.
        case contentLength
        /// No length known and an HTTP/1.1 client: chunked.
        case chunked
        /// No length known and an HTTP/1.0 client: the body ends when the connection closes.
        case untilClose
        /// 1xx, 204 and 304 responses carry no body.
        case none
    }

    /// The request answered was `HEAD`: the fields say what a `GET` would get, no body bytes follow (RFC 9110 §9.3.2).
    let suppressesBody: Bool
    private let clientSpeaksHTTP11: Bool
    private(set) var framing = Framing.none

    init(answering head: ClientHead?) {
        suppressesBody = head?.method == .HEAD
        clientSpeaksHTTP11 = head.map { $0.version == .http1_1 } ?? true
    }

    /// The connection must close after this response whatever the client asked: its body ends with the connection.
    var closesConnection: Bool { framing == .untilClose }

    /// The status line, vLLM's field lines that `forwarding` keeps (copied as they arrived), `fields` (no hop-by-hop
    /// fields but `connection: close`) and the rate limits, plus the framing field the body needs:
    /// `transfer-encoding: chunked` when no `content-length` is among them, or `connection: close` for an HTTP/1.0
    /// client (`connection: keep-alive` when its connection stays open). A repeated `content-length` is written once;
    /// a bodyless status gets none.
    /// `reserving` bytes more are allocated for body bytes that will join the head in the same buffer.
    mutating func head(_ status: HTTPResponseStatus, forwarding upstream: UpstreamHead? = nil,
                       keeping keep: (_ name: UnsafeRawBufferPointer) -> Bool = { _ in true }, fields: [(String, String)],
                       rateLimits: RateLimitFields = RateLimitFields(), reserving extra: Int = 0, allocator: ByteBufferAllocator) -> ByteBuffer {
        let bodyless = !status.mayHaveResponseBody
        let reason = status.reasonPhrase
        // The status line and final CRLF take 14 bytes and the code's at most 20; the framing field at most 28.
        var size = 62 + reason.utf8.count + rateLimits.measuredSize + (upstream.map { $0.fieldLines.readableBytes + 2 } ?? 0)
        for (name, value) in fields { size += name.utf8.count + value.utf8.count + 4 }
        var buffer = allocator.buffer(capacity: size + extra)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { bytes in
            var head = HeadBytes(bytes)
            head.append("HTTP/1.1 ")
            head.append(decimal: Int(status.code))
            head.append(" ")
            head.append(reason)
            head.append("\r\n")
            var hasLength = false
            var closes = false
            /// Whether a field goes out, noting the ones that decide the framing.
            func admits(_ name: UnsafeRawBufferPointer) -> Bool {
                if HeaderPolicy.name(name, is: "content-length") {
                    guard !bodyless, !hasLength else { return false }
                    hasLength = true
                } else if HeaderPolicy.name(name, is: "connection") {
                    closes = true
                }
                return true
            }
            upstream?.forEachField { name, line in
                guard keep(name), admits(name) else { return }
                head.append(line)
                head.append("\r\n")
            }
            for (name, value) in fields {
                var name = name
                guard name.withUTF8({ admits(UnsafeRawBufferPointer($0)) }) else { continue }
                head.append(name)
                head.append(": ")
                head.append(value)
                head.append("\r\n")
            }
            rateLimits.write(into: &head)
            if bodyless {
                framing = .none
            } else if hasLength {
                framing = .contentLength
            } else if clientSpeaksHTTP11 {
                framing = .chunked
                head.append("transfer-encoding: chunked\r\n")
            } else {
                framing = .untilClose
                if !closes { head.append("connection: close\r\n") }
            }
            // HTTP/1.0 keeps a connection only when the answer says so (RFC 9112 §C.2.2); a client not kept alive
            // was given `connection: close` among the fields.
            if !clientSpeaksHTTP11, framing != .untilClose, !closes { head.append("connection: keep-alive\r\n") }
            head.append("\r\n")
            return head.offset
        }
        return buffer
    }

    /// `data` as the body's next bytes on the wire, or nil when nothing goes out (an empty part, a HEAD answer).
    mutating func body(_ data: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard !suppressesBody, framing != .none, data.readableBytes > 0 else { return nil }
        guard framing == .chunked else { return data }
        // One buffer per chunk (size line, bytes, CRLF) rather than three writes: the copy costs less than two more
        // entries in the channel's pending writes. The buffer is kept for the next chunk: once the channel has written
        // this one and let it go it is ours alone, and `clear()` reuses it (one allocation per stream, not per event);
        // while the channel still holds it, `clear` allocates afresh and the bytes queued are never touched.
        var chunk = spareChunk.take() ?? allocator.buffer(capacity: data.readableBytes + 20)
        chunk.clear(minimumCapacity: data.readableBytes + 20)  // when still shared: a buffer this chunk's size, not the last one's
        chunk.writeHexadecimal(data.readableBytes)
        chunk.writeInteger(Self.crlf)
        chunk.writeImmutableBuffer(data)
        chunk.writeInteger(Self.crlf)
        if chunk.capacity <= Self.spareChunkCapacity { spareChunk = chunk }
        return chunk
    }

    /// The last chunk's buffer, for ``body(_:allocator:)`` to refill.
    private var spareChunk: ByteBuffer?
    /// A larger chunk's buffer is not kept: an exchange would hold it until its end.
    private static let spareChunkCapacity = 4096
    /// CR LF as one big-endian integer: one store instead of a static string's generic copy.
    private static let crlf = UInt16(0x0D0A)

    /// The bytes that end the body: the last chunk of a chunked one.
    var end: StaticString? { framing == .chunked && !suppressesBody ? "0\r\n\r\n" : nil }

    /// A whole response with a `content-length` of `body`'s size, for answers the gateway composes itself.
    mutating func whole(_ status: HTTPResponseStatus, fields: [(String, String)], body: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var head = head(status, fields: fields + [("content-length", String(body.readableBytes))], allocator: allocator)
        if !suppressesBody, framing != .none { head.writeImmutableBuffer(body) }
        return head
    }
}

/// Whole responses the gateway writes itself on a connection whose pipeline frames bytes (``ClientResponse``):
/// every one carries the request id, and a connection not kept alive closes once it is written.
enum GatewayResponder {
    static func send(_ context: ChannelHandlerContext, answering head: ClientHead?, status: HTTPResponseStatus, body: String,
                     contentType: String? = "application/json", requestID: String, keepAlive: Bool, extraHeaders: [(String, String)] = []) {
        var fields: [(String, String)] = []
        fields.reserveCapacity(3 + extraHeaders.count)
        if let contentType { fields.append(("content-type", contentType)) }
        fields.append(("x-request-id", requestID))
        fields += extraHeaders
        if !keepAlive { fields.append(("connection", "close")) }
        var response = ClientResponse(answering: head)
        let bytes = response.whole(status, fields: fields, body: context.channel.allocator.buffer(string: body), allocator: context.channel.allocator)
        context.write(NIOAny(bytes), promise: nil)
        endResponse(context, keepAlive: keepAlive)
    }

    static func send(_ context: ChannelHandlerContext, answering head: ClientHead?, error: GatewayError, requestID: String, keepAlive: Bool) {
        send(context, answering: head, status: error.status, body: error.body, requestID: requestID, keepAlive: keepAlive, extraHeaders: error.headers)
    }

    /// Flushes what the response wrote; closes the connection afterwards unless it is kept alive.
    static func endResponse(_ context: ChannelHandlerContext, keepAlive: Bool) {
        guard !keepAlive else {
            context.flush()
            return
        }
        let channel = context.channel
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(capacity: 0))).whenComplete { _ in channel.close(promise: nil) }
    }
}

extension ByteBuffer {
    /// `value` in lower-case hexadecimal without leading zeros (a chunk's size line).
    mutating func writeHexadecimal(_ value: Int) {
        let digits = max(1, (Int.bitWidth - value.leadingZeroBitCount + 3) / 4)
        writeWithUnsafeMutableBytes(minimumWritableBytes: digits) { bytes in
            var rest = value
            for index in stride(from: digits - 1, through: 0, by: -1) {
                bytes[index] = UInt8(ascii: "0") &+ UInt8(rest & 0xF) &+ (rest & 0xF >= 10 ? 39 : 0)
                rest >>= 4
            }
            return digits
        }
    }
}
