import NIOCore
import NIOHTTP1
import NIOPosix

/// Asks vLLM's `GET /health` on a fresh connection; `true` only for a 200.
enum UpstreamHealth {
    static func probe(host: String, port: Int, authority: String, timeout: TimeAmount, group: any EventLoopGroup) async -> Bool {
        do {
            let channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(StatusCatcher())
                    }
                }
                .connect(host: host, port: port).get()
            let catcher = try await channel.pipeline.handler(type: StatusCatcher.self).get()
            let promise = catcher.status!
            channel.eventLoop.scheduleTask(in: timeout) { promise.fail(ChannelError.connectTimeout(timeout)) }
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: authority)
            headers.add(name: "Connection", value: "close")
            channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/health", headers: headers)), promise: nil)
            try await channel.writeAndFlush(HTTPClientRequestPart.end(nil))
            let status = try await promise.futureResult.get()
            channel.close(promise: nil)
            return status == 200
        } catch {
            return false
        }
    }

    final class StatusCatcher: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPClientResponsePart
        var status: EventLoopPromise<Int>?
        private var done = false

        func handlerAdded(context: ChannelHandlerContext) {
            status = context.eventLoop.makePromise()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .head(let head) = unwrapInboundIn(data), !done {
                done = true
                status?.succeed(Int(head.status.code))
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            if !done { done = true; status?.fail(ChannelError.eof) }
        }
    }
}
