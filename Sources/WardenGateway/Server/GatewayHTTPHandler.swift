import NIOCore
import NIOHTTP1
import WardenConfig
import WardenJSON
import WardenNIOSupport

/// The client side of one connection: parses requests from its bytes (``ClientRequestParser``) within their limits
/// and deadline, asks ``Admission`` for a decision, answers refusals itself and hands what passes to a
/// ``ProxyExchange``, writing framed bytes (``ClientResponse``). Requests a client pipelines behind one still being
/// answered wait as bytes, in order, and only then does the connection stop reading.
final class GatewayHTTPHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let core: GatewayCore
    private var parser = ClientRequestParser()
    private var head: ClientHead?
    private var identity: Admission.Identity?
    /// What admission reads, taken when the head arrived; the policy (a reload may have revoked the key), the drain
    /// flag and the clock are read again when the body has ended.
    private var admission: Admission.Context?
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
    /// Bytes of requests pipelined behind the one being answered wait in the parser.
    private var pipelined = false
    /// A read NIO asked for while pipelined requests wait: issued once they are taken.
    private var readWithheld = false
    /// A response that closes the connection was sent, or the connection closed: whatever the client sent after it
    /// is dropped.
    private var closing = false

    init(core: GatewayCore) {
        self.core = core
    }

    func handlerAdded(context: ChannelHandlerContext) { armReadDeadline(context) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        guard exchange == nil, !pipelined else {
            parser.keep(unwrapInboundIn(data))
            pipelined = true
            return
        }
        parse(unwrapInboundIn(data), context: context)
    }

    /// Runs the parser over `bytes` until a request is in the gateway's hands or the connection is closing. Nothing
    /// the parts trigger touches the parser (a close marks `closing`; the next requests are taken on a later tick),
    /// so it is never read while it is being written.
    private func parse(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        do {
            try parser.parse(bytes) { part in
                receive(part, context: context)
                return exchange == nil && !closing
            }
            pipelined = exchange != nil && parser.holdsBytes
        } catch {
            answerMalformed(error, context: context)
        }
        if closing { parser = ClientRequestParser() }
    }

    /// Reading goes on while a response is pending (no re-arming of the socket per request); it stops while
    /// pipelined requests wait, so a client cannot make the gateway buffer more than one read ahead, and while the
    /// client does not take what it was sent, so one that pipelines and never reads cannot pile up answers.
    func read(context: ChannelHandlerContext) {
        if !pipelined, context.channel.isWritable { context.read() } else { readWithheld = true }
    }

    private func resumeReading(_ context: ChannelHandlerContext) {
        guard readWithheld, !pipelined, context.channel.isWritable else { return }
        readWithheld = false
        context.read()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// What the parser refuses gets 431 (a head too large) or 400, and the connection closes.
    private func answerMalformed(_ error: ClientRequestParser.Malformed, context: ChannelHandlerContext) {
        closing = true
        let gatewayError: GatewayError = error.headTooLarge
            ? .headersTooLarge
            : .badRequest("Malformed HTTP request: \(error.description).", code: "malformed_request")
        GatewayResponder.send(context, answering: nil, error: gatewayError, requestID: RequestIDs.next(), keepAlive: false)
    }

    /// Once an answer is complete: the requests pipelined behind it, in order, until one is in the gateway's hands.
    private func takePipelined(_ context: ChannelHandlerContext) {
        guard exchange == nil, !closing, pipelined else { return }
        pipelined = false
        parse(ByteBuffer(), context: context)
        resumeReading(context)
    }

    private func receive(_ part: ClientRequestParser.Part, context: ChannelHandlerContext) {
        switch part {
        case .head(let requestHead):
            body.clear()
            bodyViolation = nil
            let admission = admissionContext(context)
            identity = Admission.identify(requestHead, context: admission)
            // HTTP/1.0 clients do not know 100 Continue (RFC 9110 §10.1.1): their expectation is ignored.
            let expectsContinue = requestHead.version != .http1_0 && requestHead.expectation?.lowercased() == "100-continue"
            // Stored by their last uses, so they are moved rather than copied.
            self.admission = admission
            head = requestHead
            if expectsContinue { answerExpectation(context: context) }
        case .body(var chunk):
            if body.readableBytes + chunk.readableBytes > core.configuration.maxBodyBytes {
                bodyViolation = .bodyTooLarge
            } else if bodyViolation == nil {
                body.writeBuffer(&chunk)
            }
        case .end:
            awaitingRequest = false
            // Taken out (moved, not copied): nothing of the request is kept for its end.
            guard let requestHead = head.take(), let identity = identity.take(), var admission = admission.take() else {
                forgetRequest()
                return
            }
            admission.policy = core.state.policy
            admission.draining = core.state.draining.load(ordering: .relaxed)
            admission.epochSeconds = Int64(epochSeconds())
            handle(context: context, head: requestHead, identity: identity, admission: admission)
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
        closing = true
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
        let peer = self.peer ?? Admission.Peer(IPAddress(peer: context.channel.remoteAddress))
        self.peer = peer
        return Admission.Context(shared: core.admission, policy: core.state.policy, draining: core.state.draining.load(ordering: .relaxed),
                                 peer: peer.address, peerText: peer.text, epochSeconds: Int64(epochSeconds()), recentKey: recentKey)
    }

    /// `Expect: 100-continue`: the body is invited only once the head passes every check that needs no body.
    /// A declared length over the body limit is refused here too, rather than invited and read for nothing.
    private func answerExpectation(context: ChannelHandlerContext) {
        guard let head, let identity, let admission else { return }
        let invitation = context.channel.allocator.buffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n")
        // A health probe needs no key (a body, if it has one, is read and dropped): invited, never refused with 401.
        if Admission.isHealthProbe(head) { return context.writeAndFlush(NIOAny(invitation), promise: nil) }
        let declared = head.contentLength ?? 0
        switch Admission.checkHead(head, identity: identity, context: admission) {
        case .success(let (target, key, route)) where declared > core.configuration.maxBodyBytes:
            forgetRequest()
            refuse(Admission.Rejection(error: .bodyTooLarge, route: route.label, path: target.path, key: key.publicID, closeConnection: true),
                   head: head, identity: identity, received: .now(), context: context)
        case .success:
            context.writeAndFlush(NIOAny(invitation), promise: nil)
        case .failure(var rejection):
            // The client may send the body anyway or not at all: the connection cannot be reused.
            rejection.closeConnection = true
            forgetRequest()
            refuse(rejection, head: head, identity: identity, received: .now(), context: context)
        }
    }

    /// The request being read is answered or refused: nothing of it is kept for its end.
    private func forgetRequest() {
        head = nil
        identity = nil
        admission = nil
    }

    private func handle(context: ChannelHandlerContext, head: ClientHead, identity: Admission.Identity, admission: Admission.Context) {
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
        switch Admission.decide(head, body: body, bodyViolation: bodyViolation, identity: identity, context: admission) {
        case .reject(let rejection):
            refuse(rejection, head: head, identity: identity, received: received, context: context)
        case .forward(let forward):
            recentKey = forward.authenticated
            closing = !head.isKeepAlive
            let proxied = ProxyExchange(request: .init(head: head, identity: identity, forward: forward, received: received), context: context, core: core) { [weak self] finished, closesConnection in
                guard let self, self.exchange === finished else { return }
                self.exchange = nil
                // Whatever the client pipelined behind an answer that ends the connection is never answered.
                if closesConnection { self.closing = true }
                self.armReadDeadline(context)
                // Taken on the next tick, outside the finished exchange's own call stack (and the parse it may be in).
                if self.pipelined, !self.closing { context.eventLoop.assumeIsolated().execute { self.takePipelined(context) } }
            }
            exchange = proxied
            body = ByteBuffer()
            proxied.start()
        }
    }

    private func refuse(_ rejection: Admission.Rejection, head: ClientHead, identity: Admission.Identity, received: NIODeadline,
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
