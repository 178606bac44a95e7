import NIOCore
import NIOHTTP1
import NIOPosix

/// Asks vLLM's `GET /health` on a fresh connection set up exactly as proxied ones are.
enum UpstreamHealth {
    /// `nil` for a 200 within the timeout, else why vLLM is not usable (shown by `/readyz` and logged).
    static func probe(host: String, port: Int, authority: String, timeout: TimeAmount, group: any EventLoopGroup) async -> String? {
        let eventLoop = group.next()
        let status = eventLoop.makePromise(of: Int.self)
        do {
            let channel = try await UpstreamPool.bootstrap(on: eventLoop, connectTimeout: timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(StatusCatcher(status: status, timeout: timeout))
                    }
                }
                .connect(host: host, port: port).get()
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: authority)
            headers.add(name: "Connection", value: "close")
            channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/health", headers: headers)), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            let code = try await status.futureResult.get()
            channel.close(promise: nil)
            return code == 200 ? nil : "GET /health on \(authority) answered \(code)"
        } catch {
            status.fail(error)  // harmless when already completed by the handler
            return "GET /health on \(authority) failed: \(error)"
        }
    }

    /// Completes the promise exactly once: with the response status, or with a failure on close or timeout.
    final class StatusCatcher: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPClientResponsePart
        private let status: EventLoopPromise<Int>
        private let timeout: TimeAmount
        private var done = false
        private var timer: Scheduled<Void>?

        init(status: EventLoopPromise<Int>, timeout: TimeAmount) {
            self.status = status
            self.timeout = timeout
        }

        func handlerAdded(context: ChannelHandlerContext) {
            timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
                self?.finish(.failure(ChannelError.connectTimeout(self?.timeout ?? .zero)))
                context.close(promise: nil)
            }
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            finish(.failure(ChannelError.ioOnClosedChannel))
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .head(let head) = unwrapInboundIn(data) { finish(.success(Int(head.status.code))) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            finish(.failure(ChannelError.eof))
        }

        private func finish(_ result: Result<Int, any Error>) {
            guard !done else { return }
            done = true
            timer?.cancel()
            status.completeWith(result)
        }
    }
}
