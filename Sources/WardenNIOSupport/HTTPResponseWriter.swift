import NIOCore
import NIOHTTP1
import NIOPosix

/// Writes whole HTTP/1.1 responses on a server handler's context (both NIO servers answer this way).
public enum HTTPResponseWriter {
    /// Head with `content-length` (and `connection: close` when the connection ends), body, end.
    public static func respond(_ context: ChannelHandlerContext, status: HTTPResponseStatus, contentType: String?, body: String,
                        keepAlive: Bool, extraHeaders: [(String, String)] = []) {
        respond(context, status: status, contentType: contentType, body: context.channel.allocator.buffer(string: body), keepAlive: keepAlive,
                extraHeaders: extraHeaders)
    }

    /// The same, with a binary body.
    public static func respond(_ context: ChannelHandlerContext, status: HTTPResponseStatus, contentType: String?, body buffer: ByteBuffer,
                               keepAlive: Bool, extraHeaders: [(String, String)] = []) {
        var headers = HTTPHeaders()
        if let contentType { headers.add(name: "content-type", value: contentType) }
        headers.add(name: "content-length", value: String(buffer.readableBytes))
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if buffer.readableBytes > 0 {
            context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(buffer))), promise: nil)
        }
        end(context, keepAlive: keepAlive)
    }

    /// Ends the response and flushes; closes the connection afterwards unless it is kept alive.
    public static func end(_ context: ChannelHandlerContext, keepAlive: Bool) {
        guard !keepAlive else {
            // No promise: a kept-alive connection needs nothing after the write.
            context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
            return
        }
        let channel = context.channel
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}

extension ConnectionRegistry {
    /// A server bootstrap for an HTTP listener whose accepted connections this registry tracks. A connection
    /// `admit` refuses is closed at once, before any handler is added (a cheap refusal, not a spin).
    public func httpServerBootstrap(group: any EventLoopGroup, admit: (@Sendable (any Channel) -> Bool)? = nil,
                                    configure: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void) -> ServerBootstrap {
        // No child options: accepted sockets inherit TCP_NODELAY from the listener (NIO sets it there), and each
        // child option would be applied per connection through a chain of futures (~13k instructions).
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                if let admit, !admit(channel) {
                    return channel.close()
                }
                track(channel)
                return channel.eventLoop.makeCompletedFuture { try configure(channel.pipeline.syncOperations) }
            }
    }
}
