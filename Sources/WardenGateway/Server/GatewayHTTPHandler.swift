import NIOCore
import NIOHTTP1
import WardenConfig
import WardenJSON
import WardenNIOSupport

/// The client side of one connection: reads a request within its limits and deadline, asks ``Admission`` for a
/// decision, answers refusals itself and hands what passes to a ``ProxyExchange``. It sits right after NIO's
/// request decoder and writes framed bytes (``ClientResponse``); requests a client pipelines behind one still being
/// answered wait here, in order, and only then does the connection stop reading.
final class GatewayHTTPHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// What the decoder delivered while an earlier request was still being answered.
    private enum Pipelined {
        case part(HTTPServerRequestPart)
        case malformed(HTTPParserError)
    }

    private let core: GatewayCore
    private var head: HTTPRequestHead?
    private var identity: Admission.Identity?
    private var body = ByteBuffer()
    private var bodyViolation: GatewayError?
    private var exchange: ProxyExchange?
    private var readDeadline: Scheduled<Void>?
    /// When the connection last became ready for a request (opened, or its previous answer finished).
    private var idleSince = NIODeadline.now()
    /// Between a request's head and the end of its answer the read deadline does not apply.
    private var awaitingRequest = true
    /// The last key this connection authenticated with (keep-alive clients send the same one every time).
    private var recentKey: RecentKey?
    /// The TCP peer, read once per connection rather than once per request.
    private var peer: Admission.Peer?
    private var pipelined = CircularBuffer<Pipelined>()
    /// A read NIO asked for while pipelined requests wait: issued once they are taken.
    private var readWithheld = false
    /// A response that closes the connection was sent: whatever the client sent after it is dropped.
    private var closing = false

    init(core: GatewayCore) {
        self.core = core
    }

    func handlerAdded(context: ChannelHandlerContext) { armReadDeadline(context) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        guard exchange == nil, pipelined.isEmpty else {
            pipelined.append(.part(unwrapInboundIn(data)))
            return
        }
        receive(unwrapInboundIn(data), context: context)
    }

    /// Reading goes on while a response is pending (no re-arming of the socket per request); it stops while
    /// pipelined requests wait, so a client cannot make the gateway buffer more than one read ahead, and while the
    /// client does not take what it was sent, so one that pipelines and never reads cannot pile up answers.
    func read(context: ChannelHandlerContext) {
        if pipelined.isEmpty, context.channel.isWritable { context.read() } else { readWithheld = true }
    }

    private func resumeReading(_ context: ChannelHandlerContext) {
        guard readWithheld, pipelined.isEmpty, context.channel.isWritable else { return }
        readWithheld = false
        context.read()
    }

    /// The decoder refuses what is not strict HTTP/1.1: oversized heads get 431, other malformed input 400, and
    /// the connection closes (the decoder reads nothing more).
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .dataReceivedInErrorState = error as? ByteToMessageDecoderError {
            // Bytes after a request the decoder refused: that refusal (answered, or queued behind an answer still
            // going out) already ends the connection.
            return
        }
        guard let parserError = error as? HTTPParserError else {
            context.close(promise: nil)
            return
        }
        guard !closing else { return }
        guard exchange == nil, pipelined.isEmpty else {
            pipelined.append(.malformed(parserError))
            return
        }
        answerMalformed(parserError, context: context)
    }

    private func answerMalformed(_ parserError: HTTPParserError, context: ChannelHandlerContext) {
        closing = true
        let gatewayError: GatewayError = parserError == .headerOverflow
            ? .headersTooLarge
            : .badRequest("Malformed HTTP request (\(parserError)).", code: "malformed_request")
        GatewayResponder.send(context, answering: nil, error: gatewayError, requestID: RequestIDs.next(), keepAlive: false)
    }

    /// Once an answer is complete: the requests pipelined behind it, in order, until one is in the gateway's hands.
    private func takePipelined(_ context: ChannelHandlerContext) {
        while exchange == nil, !closing, let next = pipelined.popFirst() {
            switch next {
            case .part(let part): receive(part, context: context)
            case .malformed(let error): answerMalformed(error, context: context)
            }
        }
        if closing { pipelined.removeAll() }
        resumeReading(context)
    }

    private func receive(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let requestHead):
            head = requestHead
            body.clear()
            bodyViolation = nil
            let identity = Admission.identify(requestHead, context: admissionContext(context))
            self.identity = identity
            // HTTP/1.0 clients do not know 100 Continue (RFC 9110 §10.1.1): their expectation is ignored.
            if requestHead.version != .http1_0, requestHead.headers.first(name: "expect")?.lowercased() == "100-continue" {
                answerExpectation(context: context, head: requestHead, identity: identity)
            }
        case .body(var chunk):
            if body.readableBytes + chunk.readableBytes > core.configuration.maxBodyBytes {
                bodyViolation = .bodyTooLarge
            } else if bodyViolation == nil {
                body.writeBuffer(&chunk)
            }
        case .end:
            awaitingRequest = false
            guard let requestHead = head, let identity else { return }
            head = nil
            self.identity = nil
            handle(context: context, head: requestHead, identity: identity)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            exchange?.clientWritable()
            resumeReading(context)
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        readDeadline?.cancel()
        pipelined.removeAll()
        exchange?.clientWentAway()
        exchange = nil
        context.fireChannelInactive()
    }

    /// A request must arrive whole within the read timeout (slow-loris clients are cut off); the same timer
    /// closes idle keep-alive connections. One timer per connection, not per request: when it fires early (the
    /// connection served requests meanwhile) it moves itself to the current deadline.
    private func armReadDeadline(_ context: ChannelHandlerContext) {
        idleSince = .now()
        awaitingRequest = true
        if readDeadline == nil { scheduleReadDeadline(context, at: idleSince + TimeAmount(core.configuration.requestReadTimeout)) }
    }

    private func scheduleReadDeadline(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        readDeadline = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            guard let self else { return }
            self.readDeadline = nil
            // A request read whole is in the gateway's hands: its answer re-arms the deadline.
            guard self.awaitingRequest, self.exchange == nil else { return }
            let due = self.idleSince + TimeAmount(self.core.configuration.requestReadTimeout)
            if NIODeadline.now() >= due {
                context.close(promise: nil)
            } else {
                self.scheduleReadDeadline(context, at: due)
            }
        }
    }

    private func admissionContext(_ context: ChannelHandlerContext) -> Admission.Context {
        let peer = self.peer ?? Admission.Peer(context.channel.remoteAddress?.ipAddress.flatMap(IPAddress.init))
        self.peer = peer
        return Admission.Context(configuration: core.configuration, policy: core.state.policy, limits: core.limits,
                                 draining: core.state.draining.load(ordering: .relaxed), peer: peer.address, peerText: peer.text,
                                 epochSeconds: Int64(epochSeconds()), responses: core.responses, recentKey: recentKey)
    }

    /// `Expect: 100-continue`: the body is invited only once the head passes every check that needs no body.
    private func answerExpectation(context: ChannelHandlerContext, head: HTTPRequestHead, identity: Admission.Identity) {
        switch Admission.checkHead(head, identity: identity, context: admissionContext(context)) {
        case .success:
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n")), promise: nil)
        case .failure(var rejection):
            // The client may send the body anyway or not at all: the connection cannot be reused.
            rejection.closeConnection = true
            self.head = nil
            self.identity = nil
            refuse(rejection, head: head, identity: identity, received: .now(), context: context)
        }
    }

    private func handle(context: ChannelHandlerContext, head: HTTPRequestHead, identity: Admission.Identity) {
        let received = NIODeadline.now()
        if Admission.isHealthProbe(head), Admission.headerViolation(head, core.configuration) == nil {
            // As vLLM answers it: 200 with an empty body when ready, 503 when draining or vLLM is not usable.
            // Not in the access log: a probe every few seconds would drown it.
            let ready = core.state.isReady
            closing = !head.isKeepAlive
            GatewayResponder.send(context, answering: head, status: ready ? .ok : .serviceUnavailable, body: "", contentType: nil,
                                  requestID: identity.clientRequestID ?? identity.requestID, keepAlive: head.isKeepAlive)
            armReadDeadline(context)
            return
        }
        switch Admission.decide(head, body: body, bodyViolation: bodyViolation, identity: identity, context: admissionContext(context)) {
        case .reject(let rejection):
            refuse(rejection, head: head, identity: identity, received: received, context: context)
        case .forward(let forward):
            recentKey = forward.authenticated
            let request = ProxyExchange.Request(head: head, target: forward.target, route: forward.route, body: forward.body, key: forward.key,
                                                inference: forward.inference, requestID: identity.requestID, clientRequestID: identity.clientRequestID,
                                                clientAddress: identity.client, received: received, admission: forward.admission,
                                                responseHeaders: forward.responseHeaders, dropUsageEvent: forward.dropUsageEvent, shape: forward.shape)
            closing = !head.isKeepAlive
            let proxied = ProxyExchange(request: request, context: context, core: core) { [weak self] finished, closesConnection in
                guard let self, self.exchange === finished else { return }
                self.exchange = nil
                if closesConnection {
                    // Whatever the client pipelined behind an answer that ends the connection is never answered.
                    self.closing = true
                    self.pipelined.removeAll()
                }
                self.armReadDeadline(context)
                // Taken on the next tick, outside the finished exchange's own call stack.
                if !self.pipelined.isEmpty { context.eventLoop.assumeIsolated().execute { self.takePipelined(context) } }
            }
            exchange = proxied
            body = ByteBuffer()
            proxied.start()
        }
    }

    private func refuse(_ rejection: Admission.Rejection, head: HTTPRequestHead, identity: Admission.Identity, received: NIODeadline,
                        context: ChannelHandlerContext) {
        if let length = rejection.banStarted {
            core.logger.warning("address banned after repeated authentication failures",
                                metadata: ["client": "\(identity.client)", "seconds": "\(retryAfterSeconds(length))"])
            core.metrics.countRejection("ban_started")
        }
        let keepAlive = head.isKeepAlive && !rejection.closeConnection
        closing = !keepAlive
        core.record(AccessRecord(requestID: identity.requestID, clientRequestID: identity.clientRequestID, client: identity.client,
                                 key: rejection.key, method: head.method.rawValue, path: rejection.path, model: nil,
                                 status: Int(rejection.error.status.code), durationMilliseconds: Double((NIODeadline.now() - received).nanoseconds) / 1e6,
                                 decision: rejection.error.decision), route: rejection.route)
        GatewayResponder.send(context, answering: head, error: rejection.error, requestID: identity.clientRequestID ?? identity.requestID,
                              keepAlive: keepAlive)
        armReadDeadline(context)
    }
}
