import NIOCore
import NIOHTTP1
import WardenConfig
import WardenJSON
import WardenNIOSupport

/// The client side of one connection: reads a request within its limits and deadline, applies the gateway's
/// checks in order (target, drain, key, allow-list, body, model), and hands what passes to a ``ProxyExchange``.
final class GatewayHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let core: GatewayCore
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var violation: GatewayError?
    private var exchange: ProxyExchange?
    private var readDeadline: Scheduled<Void>?

    init(core: GatewayCore) {
        self.core = core
    }

    func handlerAdded(context: ChannelHandlerContext) { armReadDeadline(context) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
            body.clear()
            violation = Self.headerViolation(requestHead, core.configuration)
        case .body(var chunk):
            if body.readableBytes + chunk.readableBytes > core.configuration.maxBodyBytes {
                violation = violation ?? .bodyTooLarge
            } else if violation == nil {
                body.writeBuffer(&chunk)
            }
        case .end:
            readDeadline?.cancel()
            guard let requestHead = head else { return }
            head = nil
            handle(context: context, head: requestHead)
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
    /// closes idle keep-alive connections.
    private func armReadDeadline(_ context: ChannelHandlerContext) {
        readDeadline?.cancel()
        readDeadline = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(core.configuration.requestReadTimeout)) { [weak self] in
            guard self?.exchange == nil else { return }
            context.close(promise: nil)
        }
    }

    static func headerViolation(_ head: HTTPRequestHead, _ configuration: GatewayConfiguration) -> GatewayError? {
        let headers = head.headers
        if headers.count > configuration.maxHeaderFields
            || headers.reduce(0, { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }) > configuration.maxHeaderBytes {
            return .headersTooLarge
        }
        let lengths = headers["content-length"]
        if !lengths.isEmpty && !headers["transfer-encoding"].isEmpty {
            return .badRequest("Content-Length and Transfer-Encoding together are ambiguous.", code: "ambiguous_length")
        }
        if lengths.count > 1 || lengths.first?.utf8.contains(UInt8(ascii: ",")) == true,
           Set(lengths.flatMap { $0.split(separator: ",").map { String($0.filter { $0 != " " && $0 != "\t" }) } }).count > 1 {
            return .badRequest("Conflicting Content-Length values.", code: "ambiguous_length")
        }
        if headers["host"].count > 1 { return .badRequest("More than one Host header.", code: "ambiguous_host") }
        return nil
    }

    private func handle(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let configuration = core.configuration
        let received = NIODeadline.now()
        let requestID = HeaderPolicy.requestID(from: head.headers)
        let peer = context.channel.remoteAddress?.ipAddress.flatMap(IPAddress.init)
        let client = HeaderPolicy.clientAddress(peer: peer, forwardedFor: head.headers.first(name: "x-forwarded-for"),
                                                trusted: configuration.trustedProxies)?.description ?? "unknown"
        var keepAlive = head.isKeepAlive
        var keyID: String?
        let reject = { (error: GatewayError, path: String) in
            // After a refused body or a framing problem the rest of the stream cannot be trusted: close.
            if error.status == .payloadTooLarge || error.code == "ambiguous_length" { keepAlive = false }
            self.core.record(AccessRecord(requestID: requestID, client: client, key: keyID, method: head.method.rawValue, path: path,
                                          model: nil, status: Int(error.status.code), durationMilliseconds: Double((NIODeadline.now() - received).nanoseconds) / 1e6,
                                          decision: error.decision), route: "other")
            GatewayResponder.send(context, error: error, requestID: requestID, keepAlive: keepAlive)
            self.armReadDeadline(context)
        }
        let rawPath = String(head.uri.prefix { $0 != "?" })
        if let violation { return reject(violation, rawPath) }
        let target: RequestTarget
        do {
            target = try RequestTarget(head.uri)
        } catch {
            return reject(.badRequest("Ambiguous request target: \(error.rawValue).", code: "invalid_target"), rawPath)
        }
        if core.state.draining.load(ordering: .relaxed) {
            keepAlive = false
            return reject(.draining, target.path)
        }
        // Bans are checked before the key: a banned address costs one hash lookup.
        let limits = core.limits
        if let peerAddress = IPAddress(client), let remaining = limits.banRemaining(peerAddress) {
            return reject(.banned(retryAfter: remaining), target.path)
        }
        let policy = core.state.policy
        let key: KeyRecord
        switch policy.keys.authenticate(authorization: head.headers.first(name: "authorization"), now: Int64(epochSeconds())) {
        case .success(let record): key = record
        case .failure(let failure):
            if failure != .missing, let address = IPAddress(client), let length = limits.recordAuthFailure(address) {
                core.logger.warning("address banned after repeated authentication failures",
                                    metadata: ["client": "\(client)", "seconds": "\(retryAfterSeconds(length))"])
                core.metrics.countRejection("ban_started")
            }
            return reject(.unauthorized(failure), target.path)
        }
        keyID = key.publicID
        guard policy.allowList.allows(method: head.method.rawValue, path: target.path) else {
            return reject(.notFound(head.method.rawValue, target.path), target.path)
        }
        var inference: InferenceRequest?
        if head.method == .POST, InferenceRequest.jsonEndpoints.contains(target.path) {
            do {
                let parsed = try InferenceRequest.parse(body.readableBytesView, path: target.path, servedModel: configuration.servedModelName)
                guard key.allows(model: parsed.model) else { return reject(.modelNotAllowed(parsed.model), target.path) }
                inference = parsed
            } catch {
                return reject(error, target.path)
            }
        }
        let admission: GatewayLimits.Admission
        switch limits.admit(key: key, model: inference?.model ?? configuration.servedModelName, estimate: limits.estimate(inference)) {
        case .success(let admitted): admission = admitted
        case .failure(let error): return reject(error, target.path)
        }
        var forwardedBody = body
        var usageFilter: SSEUsageFilter?
        if let streaming = inference, streaming.stream, limits.defaults.enabled {
            // Ask vLLM for usage on the stream (continuous, so an aborted stream is charged what it generated);
            // the filter removes what the client did not ask for.
            let options = streaming.body["stream_options"]
            let clientContinuous = streaming.clientIncludesUsage && (options?["continuous_usage_stats"]?.boolValue ?? false)
            let injected = (options?.objectValue.map { JSONValue.object($0) } ?? .object([]))
                .setting("include_usage", to: .bool(true)).setting("continuous_usage_stats", to: .bool(true))
            forwardedBody = context.channel.allocator.buffer(string: streaming.body.setting("stream_options", to: injected).serialized)
            usageFilter = SSEUsageFilter(clientAskedForUsage: streaming.clientIncludesUsage, clientAskedForContinuousUsage: clientContinuous)
        }
        let request = ProxyExchange.Request(head: head, target: target, body: forwardedBody, key: key, inference: inference,
                                            requestID: requestID, clientAddress: client, received: received,
                                            admission: admission, usageFilter: usageFilter)
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

/// Answers requests the HTTP parser itself refuses: oversized heads get 431, other malformed input 400.
final class GatewayProtocolErrorHandler: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
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
        GatewayResponder.send(context, error: gatewayError, requestID: randomHex(bytes: 16), keepAlive: false)
    }
}

