import NIOCore
import NIOHTTP1
import NIOPosix

/// Asks vLLM's `GET /health`, then whether it accepts the gateway's key (`HEAD /v1/models`: vLLM checks the key
/// before routing, and a HEAD generates and returns nothing), each on a fresh connection set up exactly as proxied
/// ones are.
enum UpstreamHealth {
    /// `nil` when vLLM is healthy and takes the gateway's key, else why vLLM is not usable (shown by `/readyz`, logged).
    static func probe(host: String, port: Int, authority: String, upstreamKey: String?, timeout: TimeAmount,
                      group: any EventLoopGroup) async -> String? {
        let health = await status(.GET, "/health", host: host, port: port, authority: authority, key: nil, timeout: timeout, group: group)
        guard case .success(200) = health else { return describe(health, "/health", authority) }
        // /health is open in vLLM; a key vLLM refuses would only show as a 502 on every proxied request.
        let models = await status(.HEAD, "/v1/models", host: host, port: port, authority: authority, key: upstreamKey, timeout: timeout, group: group)
        switch models {
        case .success(401):
            return "vLLM refuses the gateway's key (\(upstreamKey == nil ? "none is set" : "VLLM_API_KEY differs")): give the gateway vLLM's VLLM_API_KEY (vllm.env_file: vllm.service reads it, the gateway's unit loads it as a credential; restart both after changing it)"
        case .success: return nil
        case .failure: return describe(models, "/v1/models", authority)
        }
    }

    private static func describe(_ result: Result<Int, any Error>, _ path: String, _ authority: String) -> String {
        switch result {
        case .success(let code): "GET \(path) on \(authority) answered \(code)"
        case .failure(let error): "GET \(path) on \(authority) failed: \(error)"
        }
    }

    /// The status of one request, or why there was none.
    private static func status(_ method: HTTPMethod, _ path: String, host: String, port: Int, authority: String, key: String?, timeout: TimeAmount,
                               group: any EventLoopGroup) async -> Result<Int, any Error> {
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
            if let key { headers.add(name: "Authorization", value: "Bearer \(key)") }
            channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            let code = try await status.futureResult.get()
            channel.close(promise: nil)
            return .success(code)
        } catch {
            status.fail(error)  // harmless when already completed by the handler
            return .failure(error)
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
