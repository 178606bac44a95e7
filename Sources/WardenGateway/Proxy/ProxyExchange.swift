import NIOCore
import NIOHTTP1
import NIOPosix
import WardenNIOSupport
import WardenJSON

/// One proxied request on its client's event loop: feeds what the client's and vLLM's channels report into an
/// ``ExchangeStateMachine`` and carries out the actions it returns. No decision is taken here.
final class ProxyExchange {
    /// The admitted request as admission handed it over: moved in whole, not copied field by field (every copy
    /// and destroy of a many-field struct retained and released each of its strings, arrays and buffers).
    struct Request {
        var head: ClientHead
        var identity: Admission.Identity
        var forward: Admission.Forward
        var received: NIODeadline

        var target: RequestTarget { forward.target }
        /// The allow-listed route: the metric label, and the meter that settles it.
        var route: AllowedRoute { forward.route }
        var body: ByteBuffer { forward.body }
        var key: KeyRecord { forward.key }
        /// The body's model, for the access log.
        var model: String? { forward.model }
        /// The gateway's id: sent to vLLM, logged, and echoed to the client.
        var requestID: String { identity.requestID }
        /// The id the client sent: logged and echoed back, never sent to vLLM.
        var clientRequestID: String? { identity.clientRequestID }
        var clientAddress: String { identity.client }
        var admission: GatewayLimits.Admission { forward.admission }
        /// Response headers the gateway adds besides the rate limits (an injected cap).
        var responseHeaders: [(String, String)] { forward.responseHeaders }
        /// The id the client sees in `x-request-id`: its own when it sent one.
        var echoedRequestID: String { identity.clientRequestID ?? identity.requestID }
    }

    private let request: Request
    private let context: ChannelHandlerContext
    /// The client channel's allocator, looked up once (each lookup goes through the channel's protocol witness).
    private let allocator: ByteBufferAllocator
    private let core: GatewayCore
    /// Told once the exchange is settled and its last bytes are written, and whether the client's connection closes.
    private let onFinished: (ProxyExchange, _ closesConnection: Bool) -> Void
    private var reportedFinished = false
    /// The answer ends the client's connection (not kept alive, or a body that ends with the close).
    private var closesClient = false
    private var machine: ExchangeStateMachine
    /// How the response's body is framed toward the client.
    private var response: ClientResponse
    /// Events raised while actions are being carried out (a flush that makes the client writable again, a
    /// write that closes the channel): handled after the current event's actions, never in the middle of them.
    private var deferred: [ExchangeStateMachine.Event] = []
    private var performing = false
    /// The machine's actions for the event being handled: one buffer reused for every event of the exchange.
    private var actions: [ExchangeStateMachine.Action] = []
    /// vLLM's head as the client gets it, held until the body bytes of the same read join it: one write to the
    /// client's channel instead of two. Any other write to the client writes it first, so nothing overtakes it.
    private var heldHead: ByteBuffer?
    private var connection: UpstreamConnection?
    private var stallTimer: Scheduled<Void>?
    private var sentAt: NIODeadline?
    private var firstByteAt: NIODeadline?
    private var upstreamDoneAt: NIODeadline?

    init(request: Request, context: ChannelHandlerContext, core: GatewayCore, onFinished: @escaping (ProxyExchange, _ closesConnection: Bool) -> Void) {
        self.context = context
        allocator = context.channel.allocator
        self.core = core
        self.onFinished = onFinished
        response = ClientResponse(answering: request.head)
        machine = ExchangeStateMachine(request: .init(
            requestID: request.identity.requestID, keepAlive: request.head.isKeepAlive, reservedTokens: request.forward.admission.reservedTokens,
            dropUsageEvent: request.forward.dropUsageEvent, shape: request.forward.shape, visibleModels: request.forward.key.models,
            isModelList: request.forward.target.path == "/v1/models"))
        // Stored last: its last use, so it is moved rather than copied.
        self.request = request
    }

    func start() {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        core.state.register(ObjectIdentifier(self)) { eventLoop.execute { bound.value.handle(.terminate) } }
        core.metrics.inFlight.increment()
        handle(.start)
    }

    // MARK: - Events from the channels

    func upstreamReceived(_ part: UpstreamResponsePart) {
        switch part {
        case .head(let head): handle(.responseHead(head))
        case .body(let buffer):
            if firstByteAt == nil { firstByteAt = .now() }
            handle(.responseBody(buffer))
        case .end:
            upstreamDoneAt = .now()
            handle(.responseEnd)
        }
    }

    func upstreamReadComplete() {
        // The read's bytes are written first; whether the client keeps up is judged after that write.
        handle(.readComplete(clientWritable: true))
        if !context.channel.isWritable { handle(.readComplete(clientWritable: false)) }
    }
    func upstreamClosed(reason: String, retryable: Bool = true) { handle(.upstreamClosed(reason, retryable: retryable)) }
    /// The handshake the request was queued behind completed: from now on vLLM has it.
    func upstreamRequestDelivered() { handle(.requestDelivered) }
    /// The connection the request was queued on never completed its handshake: nothing reached vLLM.
    func upstreamConnectFailed(reason: String) {
        sentAt = nil
        handle(.connectFailed(reason))
    }
    func clientWritable() { handle(.clientWritable) }
    func clientWentAway() { handle(.clientGone) }

    private func handle(_ event: ExchangeStateMachine.Event) {
        guard !performing else {
            deferred.append(event)
            return
        }
        performing = true
        run(event)
        while !deferred.isEmpty { run(deferred.removeFirst()) }
        performing = false
        if machine.isFinished, !reportedFinished {
            reportedFinished = true
            onFinished(self, closesClient)
        }
    }

    private func run(_ event: ExchangeStateMachine.Event) {
        var batch: [ExchangeStateMachine.Action] = []
        swap(&batch, &actions)
        machine.handle(event, into: &batch)
        // Moved out one by one, last first after a reverse: iterating would copy each action (retaining its payload)
        // and destroy it again with the array. Emptied at once, not at the next event: a written body part would
        // otherwise hold its read buffer for as long as the stream waits for its next token.
        if batch.count > 1 { batch.reverse() }
        while let action = batch.popLast() { perform(action) }
        swap(&batch, &actions)
    }

    // MARK: - Actions

    private func perform(_ action: ExchangeStateMachine.Action) {
        if heldHead != nil, action.overtakesHeldHead { writeHeldHead() }
        switch action {
        case .acquireConnection(let fresh):
            acquire(fresh: fresh)
        case .sendRequest:
            send()
        case .writeHead(let upstream):
            let rateLimited = request.admission.rateLimits != RateLimitFields()
            // Room for a small body (or a first event) to join the head; a larger one is written on its own, and an
            // answer without a body (HEAD, 204, 304) reserves none.
            let bodyFollows = !response.suppressesBody && upstream.status.mayHaveResponseBody
            let joining = bodyFollows ? min(upstream.contentLength ?? (upstream.isEventStream ? 512 : 0), Self.joinedBodyLimit) : 0
            heldHead = response.head(upstream.status, forwarding: upstream, keeping: { forwards($0, of: upstream, rateLimited: rateLimited) },
                                     fields: gatewayFields, rateLimits: request.admission.rateLimits, reserving: joining,
                                     allocator: allocator)
        case .writeBody(let buffer):
            writeBody(buffer)
        case .flush:
            context.flush()
        case .pauseUpstream:
            if let channel = connection?.channel { channel.setOption(.autoRead, value: false).whenFailure { _ in channel.close(promise: nil) } }
        case .resumeUpstream:
            connection?.channel.setOption(.autoRead, value: true).whenFailure { _ in }
        case .startStallTimer:
            stallTimer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(core.configuration.clientWriteTimeout)) { [self] in
                handle(.stallTimeout)
            }
        case .cancelStallTimer:
            stallTimer?.cancel()
            stallTimer = nil
        case .releaseUpstream:
            if let connection { core.pool.release(connection, on: context.eventLoop) }
            connection = nil
        case .closeUpstream:
            connection?.handler.exchange = nil
            connection?.channel.close(promise: nil)
            connection = nil
        case .finish(let outcome):
            finish(outcome)
        case .respond(let error, let keepAlive):
            closesClient = closesClient || !keepAlive
            GatewayResponder.send(context, answering: request.head, error: error, requestID: request.echoedRequestID, keepAlive: keepAlive)
        case .respondModels(let body):
            GatewayResponder.send(context, answering: request.head, status: .ok, body: Self.filterModels(body, allowed: request.key.models),
                                  requestID: request.echoedRequestID, keepAlive: request.head.isKeepAlive)
        case .writeStreamError(let message, let code):
            var event = "data: {\"error\":{\"message\":"
            event.appendJSONString(message)
            event += ",\"type\":\"upstream_error\",\"param\":null,\"code\":\"\(code)\"}}\n\ndata: [DONE]\n\n"
            writeBody(allocator.buffer(string: event))
        case .endResponse(let keepAlive):
            if let end = response.end { context.write(NIOAny(allocator.buffer(staticString: end)), promise: nil) }
            closesClient = closesClient || !keepAlive || response.closesConnection
            GatewayResponder.endResponse(context, keepAlive: !closesClient)
        case .closeClient:
            closesClient = true
            context.close(promise: nil)
        }
    }

    private func writeBody(_ buffer: ByteBuffer) {
        guard let bytes = response.body(buffer, allocator: allocator) else { return }
        if var head = heldHead.take() {
            guard bytes.readableBytes <= Self.joinedBodyLimit else {
                context.write(NIOAny(head), promise: nil)
                return context.write(NIOAny(bytes), promise: nil)
            }
            head.writeImmutableBuffer(bytes)
            return context.write(NIOAny(head), promise: nil)
        }
        context.write(NIOAny(bytes), promise: nil)
    }

    private func writeHeldHead() {
        if let head = heldHead.take() { context.write(NIOAny(head), promise: nil) }
    }

    /// The most body bytes copied into the head's buffer rather than written after it.
    static let joinedBodyLimit = 16 * 1024

    /// Whether one of vLLM's fields reaches the client: not hop-by-hop ones, and not those the gateway sets itself
    /// (its request id, the limits, its added fields), nor vLLM's length on an event stream.
    private func forwards(_ name: UnsafeRawBufferPointer, of upstream: UpstreamHead, rateLimited: Bool) -> Bool {
        !HeaderPolicy.isHopByHop(name) && !HeaderPolicy.name(name, is: "x-request-id")
            && !request.responseHeaders.contains(where: { HeaderPolicy.name(name, equalsLowercase: $0.0) })
            && !(rateLimited && HeaderPolicy.name(name, hasLowercasePrefix: "x-ratelimit-"))
            && !(upstream.isEventStream && HeaderPolicy.name(name, is: "content-length"))
            && !upstream.connectionNamed.contains(where: { HeaderPolicy.name(name, equalsLowercase: $0) })
    }

    /// The fields the gateway adds to vLLM's.
    private var gatewayFields: [(String, String)] {
        var fields = [("x-request-id", request.echoedRequestID)]
        fields += request.responseHeaders
        if !request.head.isKeepAlive { fields.append(("connection", "close")) }
        return fields
    }

    private func acquire(fresh: Bool) {
        let completion: (Result<(UpstreamConnection, reused: Bool), any Error>) -> Void = { [self] result in
            guard !machine.isFinished else {
                if case .success(let (connection, _)) = result { connection.channel.close(promise: nil) }
                return
            }
            switch result {
            case .success(let (connection, reused)):
                self.connection = connection
                connection.handler.exchange = self
                handle(.connected(reused: reused, delivered: !connection.handler.awaitsHandshake))
            case .failure(let error):
                handle(.connectFailed(Self.describe(error)))
            }
        }
        if fresh {
            core.pool.connect(on: context.eventLoop) { completion($0.map { ($0, false) }) }
        } else {
            core.pool.acquire(on: context.eventLoop, completion)
        }
    }

    /// The request head is written as bytes into one buffer with the body (``HeaderPolicy/writeUpstreamHead``).
    private func send() {
        guard let connection else { return }
        var body = request.body
        var bytes = connection.channel.allocator.buffer(capacity: 512 + body.readableBytes)
        // Fields read one by one from the core: a local copy of the configuration retained all of it per request.
        HeaderPolicy.writeUpstreamHead(into: &bytes, method: request.head.method, uri: request.target.uri, from: request.head,
                                       forwarded: core.configuration.forwardedHeaderNames, upstreamHost: core.configuration.upstreamAuthority,
                                       upstreamKey: core.configuration.upstreamKey, requestID: request.requestID,
                                       clientAddress: request.clientAddress, bodyLength: body.readableBytes)
        bytes.writeBuffer(&body)
        // Taken first: a connection that fails as the bytes are handed to it settles the exchange inside `send`.
        sentAt = .now()
        connection.send(bytes, method: request.head.method)
    }

    /// Settles the tokens, releases the lease, records metrics and the access log line; the request leaves the
    /// in-flight count last, so whoever sees it gone sees it accounted.
    private func finish(_ outcome: ExchangeStateMachine.Outcome) {
        stallTimer?.cancel()
        let now = NIODeadline.now()
        core.limits.finish(request.admission, charged: outcome.charged)
        if let id = outcome.responseID {
            core.responses.record(id, key: request.key.publicID, contextTokens: outcome.usage?.total ?? outcome.charged)
        }
        let total = now - request.received
        if let sentAt {
            let upstreamWait = (upstreamDoneAt ?? now) - sentAt
            core.metrics.upstreamLatency.recordNanoseconds(upstreamWait.nanoseconds)
            core.metrics.overhead.recordNanoseconds(max(0, total.nanoseconds - upstreamWait.nanoseconds))
        }
        if let firstByteAt { core.metrics.timeToFirstToken.recordNanoseconds((firstByteAt - request.received).nanoseconds) }
        core.record(AccessRecord(
            requestID: request.requestID, clientRequestID: request.clientRequestID, client: request.clientAddress, key: request.key.publicID,
            method: request.head.method.rawValue, path: request.target.path, model: request.model, status: outcome.status,
            promptTokens: outcome.usage?.prompt, completionTokens: outcome.usage?.completion, chargedTokens: outcome.charged,
            timeToFirstTokenMilliseconds: firstByteAt.map { Double(($0 - request.received).nanoseconds) / 1e6 },
            durationMilliseconds: Double(total.nanoseconds) / 1e6, upstreamStatus: outcome.upstreamStatus, decision: outcome.decision),
            route: request.route.label)
        core.metrics.inFlight.decrement()
        core.state.unregister(ObjectIdentifier(self))
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
