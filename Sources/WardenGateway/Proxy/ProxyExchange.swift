import NIOCore
import NIOHTTP1
import NIOPosix
import WardenNIOSupport
import WardenJSON

/// One proxied request on its client's event loop: takes an upstream connection, relays the response with
/// back-pressure both ways, turns upstream failures into OpenAI-shaped answers (or a terminal SSE error event),
/// and closes the upstream connection the moment the client goes away so vLLM aborts the generation.
final class ProxyExchange {
    struct Request {
        var head: HTTPRequestHead
        var target: RequestTarget
        var body: ByteBuffer
        var key: KeyRecord
        var inference: InferenceRequest?
        var requestID: String
        var clientAddress: String
        var received: NIODeadline
        var admission: GatewayLimits.Admission
        var usageFilter: SSEUsageFilter?
    }

    private enum Phase { case connecting, waitingForHead, relaying, finished }
    private enum Rewrite { case error(GatewayError), filterModels }

    private let request: Request
    private let context: ChannelHandlerContext
    private let core: GatewayCore
    private let onFinished: (ProxyExchange) -> Void
    private var phase = Phase.connecting
    private var connection: UpstreamConnection?
    private var connectionReused = false
    private var retried = false
    private var receivedAnything = false
    private var responseHeadSent = false
    private var isEventStream = false
    private var upstreamKeepAlive = true
    private var upstreamStatus: Int?
    private var rewrite: Rewrite?
    private var rewriteBuffer = ByteBuffer()
    private var readPaused = false
    private var usage: (prompt: Int, completion: Int)?
    private var usageFilter: SSEUsageFilter?
    private var sentAt: NIODeadline?
    private var firstByteAt: NIODeadline?
    private var upstreamDoneAt: NIODeadline?

    init(request: Request, context: ChannelHandlerContext, core: GatewayCore, onFinished: @escaping (ProxyExchange) -> Void) {
        self.request = request
        self.context = context
        self.core = core
        self.onFinished = onFinished
        self.usageFilter = request.usageFilter
    }

    private var keepAliveClient: Bool { request.head.isKeepAlive }

    func start() {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        core.state.register(ObjectIdentifier(self)) { eventLoop.execute { bound.value.terminate() } }
        core.metrics.inFlight.increment()
        acquire(fresh: false)
    }

    private func acquire(fresh: Bool) {
        let completion: (Result<(UpstreamConnection, reused: Bool), any Error>) -> Void = { [self] result in
            guard phase != .finished else {
                if case .success(let (connection, _)) = result { connection.channel.close(promise: nil) }
                return
            }
            switch result {
            case .success(let (connection, reused)):
                connectionReused = reused
                send(on: connection)
            case .failure(let error):
                fail(before: GatewayError.upstreamUnavailable(Self.describe(error)))
            }
        }
        if fresh {
            core.pool.connect(on: context.eventLoop) { completion($0.map { ($0, false) }) }
        } else {
            core.pool.acquire(on: context.eventLoop, completion)
        }
    }

    private func send(on connection: UpstreamConnection) {
        self.connection = connection
        connection.handler.exchange = self
        let configuration = core.configuration
        let headers = HeaderPolicy.upstreamHeaders(from: request.head.headers, upstreamHost: configuration.upstreamAuthority,
                                                   upstreamKey: configuration.upstreamKey, requestID: request.requestID,
                                                   clientAddress: request.clientAddress, bodyLength: request.body.readableBytes)
        let head = HTTPRequestHead(version: .http1_1, method: request.head.method, uri: request.target.uri, headers: headers)
        let channel = connection.channel
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if request.body.readableBytes > 0 { channel.write(HTTPClientRequestPart.body(.byteBuffer(request.body)), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        phase = .waitingForHead
        sentAt = .now()
    }

    // MARK: - Upstream events

    func upstreamReceived(_ part: HTTPClientResponsePart) {
        guard phase != .finished else { return }
        receivedAnything = true
        switch part {
        case .head(let head):
            receivedHead(head)
        case .body(let buffer):
            if firstByteAt == nil { firstByteAt = .now() }
            if rewrite != nil {
                var buffer = buffer
                rewriteBuffer.writeBuffer(&buffer)
                return
            }
            if isEventStream, usageFilter != nil {
                let filtered = usageFilter!.process(buffer)
                usage = usageFilter!.usage ?? usage
                if !filtered.isEmpty {
                    context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(context.channel.allocator.buffer(bytes: filtered)))), promise: nil)
                }
                return
            }
            if isEventStream || request.inference != nil, let found = UsageScanner.lastUsage(in: buffer) { usage = found }
            context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(buffer))), promise: nil)
        case .end:
            upstreamDoneAt = .now()
            complete()
        }
    }

    private func receivedHead(_ head: HTTPResponseHead) {
        phase = .relaying
        upstreamStatus = Int(head.status.code)
        upstreamKeepAlive = head.isKeepAlive
        isEventStream = head.headers.first(name: "content-type")?.hasPrefix("text/event-stream") ?? false
        if head.status == .unauthorized {
            rewrite = .error(.upstreamCredentials)
        } else if head.status.code >= 500, !isEventStream {
            // vLLM's own error texts have leaked heap addresses: clients get a generic message and the request id.
            rewrite = .error(.upstreamFailed(requestID: request.requestID, status: Int(head.status.code)))
        } else if request.target.path == "/v1/models", !request.key.models.isEmpty, head.status == .ok {
            rewrite = .filterModels
        }
        guard rewrite == nil else { return }
        var headers = head.headers
        HeaderPolicy.stripHopByHop(&headers)
        headers.replaceOrAdd(name: "x-request-id", value: request.requestID)
        for (name, value) in request.admission.headers { headers.replaceOrAdd(name: name, value: value) }
        if !keepAliveClient { headers.replaceOrAdd(name: "connection", value: "close") }
        context.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: head.status, headers: headers))), promise: nil)
        responseHeadSent = true
    }

    /// After each batch from vLLM: flush to the client; stop reading vLLM while the client cannot keep up.
    func upstreamReadComplete() {
        guard phase != .finished else { return }
        if responseHeadSent { context.flush() }
        if !context.channel.isWritable, !readPaused, let channel = connection?.channel {
            readPaused = true
            channel.setOption(.autoRead, value: false).whenFailure { _ in channel.close(promise: nil) }
        }
    }

    /// The client drained its buffer: resume reading from vLLM.
    func clientWritable() {
        guard readPaused, phase != .finished else { return }
        readPaused = false
        connection?.channel.setOption(.autoRead, value: true).whenFailure { _ in }
    }

    func upstreamClosed(reason: String) {
        guard phase != .finished else { return }
        let connection = self.connection
        self.connection = nil
        connection?.channel.close(promise: nil)
        if !receivedAnything, connectionReused, !retried {
            // A reused keep-alive connection that vLLM closed just before our request: one retry on a fresh one.
            retried = true
            acquire(fresh: true)
            return
        }
        if !responseHeadSent {
            fail(before: receivedAnything ? .upstreamFailed(requestID: request.requestID, status: upstreamStatus ?? 0) : .upstreamUnavailable(reason))
            return
        }
        if isEventStream {
            writeStreamError(message: "The model server stopped mid-stream (\(reason)); request id \(request.requestID).", code: "upstream_error")
            finish(status: upstreamStatus ?? 200, decision: "upstream_failed_midstream")
            HTTPResponseWriter.end(context, keepAlive: keepAliveClient)
        } else {
            finish(status: upstreamStatus ?? 502, decision: "upstream_failed_midstream")
            context.close(promise: nil)
        }
    }

    // MARK: - Client events

    /// The client closed its connection: close vLLM's side at once so it aborts the generation.
    func clientWentAway() {
        guard phase != .finished else { return }
        dropUpstream()
        finish(status: 499, decision: "client_closed")
    }

    /// Closes vLLM's connection without reusing it; vLLM aborts whatever it was generating for us.
    private func dropUpstream() {
        connection?.handler.exchange = nil
        connection?.channel.close(promise: nil)
        connection = nil
    }

    /// Drain time is up: end a stream with a terminal error event, anything else by closing.
    func terminate() {
        guard phase != .finished else { return }
        dropUpstream()
        if !responseHeadSent {
            fail(before: .draining, keepAlive: false)
        } else if isEventStream {
            writeStreamError(message: "The gateway is shutting down; the stream was ended before completion.", code: "shutting_down")
            finish(status: upstreamStatus ?? 200, decision: "drained")
            HTTPResponseWriter.end(context, keepAlive: false)
        } else {
            finish(status: upstreamStatus ?? 503, decision: "drained")
            context.close(promise: nil)
        }
    }

    // MARK: - Endings

    private func complete() {
        let connection = self.connection
        self.connection = nil
        if let connection {
            if upstreamKeepAlive { core.pool.release(connection, on: context.eventLoop) } else { connection.channel.close(promise: nil) }
        }
        switch rewrite {
        case .error(let error):
            finish(status: Int(error.status.code), decision: error.decision)
            GatewayResponder.send(context, error: error, requestID: request.requestID, keepAlive: keepAliveClient)
        case .filterModels:
            let body = Self.filterModels(rewriteBuffer, allowed: request.key.models)
            finish(status: 200, decision: "allowed")
            GatewayResponder.send(context, status: .ok, body: body, requestID: request.requestID, keepAlive: keepAliveClient)
        case nil:
            if let rest = usageFilter?.flush(), !rest.isEmpty {
                context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(context.channel.allocator.buffer(bytes: rest)))), promise: nil)
            }
            finish(status: upstreamStatus ?? 200, decision: "allowed")
            HTTPResponseWriter.end(context, keepAlive: keepAliveClient)
        }
    }

    private func fail(before error: GatewayError, keepAlive: Bool? = nil) {
        finish(status: Int(error.status.code), decision: error.decision)
        GatewayResponder.send(context, error: error, requestID: request.requestID, keepAlive: keepAlive ?? keepAliveClient)
    }

    private func writeStreamError(message: String, code: String) {
        var event = "data: {\"error\":{\"message\":"
        event.appendJSONString(message)
        event += ",\"type\":\"upstream_error\",\"param\":null,\"code\":\"\(code)\"}}\n\ndata: [DONE]\n\n"
        context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(context.channel.allocator.buffer(string: event)))), promise: nil)
    }

    /// Accounts for the request before its last bytes go out, so a pipelined next request never sees it as current.
    private func finish(status: Int, decision: String) {
        guard phase != .finished else { return }
        phase = .finished
        let now = NIODeadline.now()
        core.state.unregister(ObjectIdentifier(self))
        core.metrics.inFlight.decrement()
        core.limits.finish(request.admission, used: tokensUsed(status: status))
        let total = now - request.received
        if let sentAt {
            let upstreamWait = (upstreamDoneAt ?? now) - sentAt
            core.metrics.upstreamLatency.recordNanoseconds(upstreamWait.nanoseconds)
            core.metrics.overhead.recordNanoseconds(max(0, total.nanoseconds - upstreamWait.nanoseconds))
        }
        if let firstByteAt { core.metrics.timeToFirstToken.recordNanoseconds((firstByteAt - request.received).nanoseconds) }
        core.record(AccessRecord(
            requestID: request.requestID, client: request.clientAddress, key: request.key.publicID,
            method: request.head.method.rawValue, path: request.target.path, model: request.inference?.model, status: status,
            promptTokens: usage?.prompt, completionTokens: usage?.completion,
            timeToFirstTokenMilliseconds: firstByteAt.map { Double(($0 - request.received).nanoseconds) / 1e6 },
            durationMilliseconds: Double(total.nanoseconds) / 1e6, upstreamStatus: upstreamStatus, decision: decision),
            route: request.target.path)
        onFinished(self)
    }

    /// Tokens to charge: vLLM's usage when it reported any (for an aborted stream, the cumulative usage so far);
    /// nothing when vLLM refused or never saw the request; the reservation when usage is unknown.
    private func tokensUsed(status: Int) -> Int {
        if let usage { return usage.prompt + usage.completion }
        guard sentAt != nil, let upstreamStatus, upstreamStatus < 400 else { return 0 }
        return request.admission.reservedTokens
    }

    /// `/v1/models` as this key may see it: only its allowed models.
    static func filterModels(_ buffer: ByteBuffer, allowed: [String]) -> String {
        guard let document = try? JSONValue.parse(buffer.readableBytesView), let data = document["data"]?.arrayValue else {
            return #"{"object":"list","data":[]}"#
        }
        let kept = data.filter { allowed.contains($0["id"]?.stringValue ?? "") }
        return document.setting("data", to: .array(kept)).serialized
    }

    static func describe(_ error: any Error) -> String {
        if let connect = error as? NIOConnectionError { return connect.connectionErrors.first.map { "\($0.error)" } ?? "connection refused" }
        if let io = error as? IOError { return io.description }
        return "\(error)"
    }
}
