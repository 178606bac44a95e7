import NIOCore
import NIOHTTP1

/// Small helpers that write whole responses on a handler's context.
enum HTTPWriter {
    static func respond(_ context: ChannelHandlerContext, status: HTTPResponseStatus, contentType: String?, body: String,
                        keepAlive: Bool, extraHeaders: [(String, String)] = []) {
        let buffer = context.channel.allocator.buffer(string: body)
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

    static func end(_ context: ChannelHandlerContext, keepAlive: Bool) {
        let written = context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
        if !keepAlive {
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
