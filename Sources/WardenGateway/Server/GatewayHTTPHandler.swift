import NIOCore
import NIOHTTP1
import WardenConfig
import WardenJSON
import WardenNIOSupport

/// The client side of one connection: reads a request within its limits and deadline, asks ``Admission`` for a
/// decision, answers refusals itself and hands what passes to a ``ProxyExchange``.
final class GatewayHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

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

    init(core: GatewayCore) {
        self.core = core
    }

    func handlerAdded(context: ChannelHandlerContext) { armReadDeadline(context) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
            body.clear()
            bodyViolation = nil
            let identity = Admission.identify(requestHead, context: admissionContext(context))
            self.identity = identity
            if requestHead.headers.first(name: "expect")?.lowercased() == "100-continue" {
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
        if context.channel.isWritable { exchange?.clientWritable() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        readDeadline?.cancel()
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
            context.writeAndFlush(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
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
            HTTPResponseWriter.respond(context, status: ready ? .ok : .serviceUnavailable, contentType: nil, body: "",
                                       keepAlive: head.isKeepAlive, extraHeaders: [("x-request-id", identity.clientRequestID ?? identity.requestID)])
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
            let proxied = ProxyExchange(request: request, context: context, core: core) { [weak self] finished in
                guard let self, self.exchange === finished else { return }
                self.exchange = nil
                self.armReadDeadline(context)
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
        core.record(AccessRecord(requestID: identity.requestID, clientRequestID: identity.clientRequestID, client: identity.client,
                                 key: rejection.key, method: head.method.rawValue, path: rejection.path, model: nil,
                                 status: Int(rejection.error.status.code), durationMilliseconds: Double((NIODeadline.now() - received).nanoseconds) / 1e6,
                                 decision: rejection.error.decision), route: rejection.route)
        GatewayResponder.send(context, error: rejection.error, requestID: identity.clientRequestID ?? identity.requestID, keepAlive: keepAlive)
        armReadDeadline(context)
    }
}

/// Answers requests the HTTP parser itself refuses: oversized heads get 431, other malformed input 400.
/// Inbound only, so responses do not pass through it on their way out.
final class GatewayProtocolErrorHandler: ChannelInboundHandler {
    typealias InboundIn = NIOAny
    typealias OutboundOut = HTTPServerResponsePart
    private var responding = false

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.close(promise: nil)
            return
        }
        guard !responding else { return }
        responding = true
        let gatewayError: GatewayError = parserError == .headerOverflow
            ? .headersTooLarge
            : .badRequest("Malformed HTTP request (\(parserError)).", code: "malformed_request")
        GatewayResponder.send(context, error: gatewayError, requestID: RequestIDs.next(), keepAlive: false)
    }
}

