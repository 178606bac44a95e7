import NIOCore
import NIOHTTP1
import WardenConfig
import WardenJSON

/// The admin listener (loopback by default): liveness, readiness and Prometheus metrics — never proxied. Held to
/// the public listener's manners: pipelined requests are answered only while the client reads the answers (one that
/// sent thousands of `GET /metrics` and read nothing grew the gateway by hundreds of MiB), a request must arrive
/// within the read timeout, and at most ``maxConnections`` are open at once.
final class AdminHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = IOData

    /// Scrapers and `warden status` need a few; more is somebody holding connections open.
    static let maxConnections = 64

    private let core: GatewayCore
    private let connections: ConnectionLimiter
    /// The same strict parser as the public listener's; every answer is written before the next request is read.
    private var parser = ClientRequestParser()
    private var head: ClientHead?
    private var closing = false
    private var counted = false
    /// A read NIO asked for while the client was not reading its answers: passed on once it is.
    private var readHeld = false
    /// Inside `parse`: a write that crosses the high-water mark and a flush that drains it report writability
    /// synchronously, from within the answer being written; resuming the parse there would re-enter the parser.
    private var parsing = false
    private var deadline: Scheduled<Void>?

    init(core: GatewayCore, connections: ConnectionLimiter) {
        self.core = core
        self.connections = connections
    }

    func channelActive(context: ChannelHandlerContext) {
        guard connections.open(from: nil) == nil else {
            closing = true
            context.close(promise: nil)
            return
        }
        counted = true
        armDeadline(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if counted { connections.close(from: nil) }
        counted = false
        deadline?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        parse(unwrapInboundIn(data), context: context)
    }

    /// Parses what arrived after what was held, answering each request while the client keeps up.
    private func parse(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        // After an answer that closes the connection, nothing more is read as a request.
        guard !closing, !parsing else { return }
        parsing = true
        defer { parsing = false }
        do {
            try parser.parse(bytes) { part in
                switch part {
                case .head(let requestHead): head = requestHead
                case .body: break
                case .end:
                    if let requestHead = head { respond(context: context, head: requestHead) }
                    head = nil
                    armDeadline(context)
                }
                return !closing && context.channel.isWritable
            }
        } catch {
            // Input the parser refuses gets 400 (431 for an oversized head) and the connection closes.
            closing = true
            GatewayResponder.send(context, answering: nil, error: error.headTooLarge ? .headersTooLarge : .badRequest("Malformed HTTP request.", code: "malformed_request"),
                                  requestID: RequestIDs.next(), keepAlive: false)
        }
    }

    func read(context: ChannelHandlerContext) {
        guard context.channel.isWritable else {
            readHeld = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Within `parse` the loop itself goes on once the channel is writable again.
        if context.channel.isWritable, !parsing {
            parse(ByteBuffer(), context: context)  // the requests held while the client was not reading
            if readHeld, context.channel.isWritable {
                readHeld = false
                context.read()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    /// The next request must arrive whole within the read timeout, as on the public listener; an idle keep-alive
    /// connection is closed then too.
    private func armDeadline(_ context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(core.configuration.requestReadTimeout)) {
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func respond(context: ChannelHandlerContext, head: ClientHead) {
        let path = String(head.uri.prefix { $0 != "?" })
        let requestID = HeaderPolicy.clientRequestID(head.requestIDField) ?? RequestIDs.next()
        let keepAlive = head.isKeepAlive
        closing = !keepAlive
        switch (head.method, path) {
        case (.GET, "/healthz"):
            GatewayResponder.send(context, answering: head, status: .ok, body: #"{"status":"alive"}"#, requestID: requestID, keepAlive: keepAlive)
        case (.GET, "/readyz"):
            let draining = core.state.draining.load(ordering: .relaxed)
            let problem = core.state.upstreamProblem
            let ready = !draining && problem == nil
            let body = JSONValue.object([("ready", .bool(ready)), ("draining", .bool(draining)), ("upstream_healthy", .bool(problem == nil)),
                                         ("upstream_error", problem.map(JSONValue.string) ?? .null)]).serialized
            GatewayResponder.send(context, answering: head, status: ready ? .ok : .serviceUnavailable, body: body, requestID: requestID, keepAlive: keepAlive)
        case (.GET, "/status"):
            // One document for `warden status`: readiness, load, bans and recent refusals.
            let draining = core.state.draining.load(ordering: .relaxed)
            let problem = core.state.upstreamProblem
            let (minutes, rejections) = core.metrics.recentRejectionTotals()
            let body = JSONValue.object([
                ("ready", .bool(!draining && problem == nil)), ("draining", .bool(draining)), ("upstream_error", problem.map(JSONValue.string) ?? .null),
                ("in_flight", .number(String(core.state.inFlight.load(ordering: .relaxed)))),
                ("bans", .number(String(core.limits.activeBanCount()))),
                ("rejections_window_minutes", .number(String(minutes))),
                ("rejections", .object(rejections.sorted { $0.key < $1.key }.map { ($0.key, .number(String($0.value))) })),
            ]).serialized
            GatewayResponder.send(context, answering: head, status: .ok, body: body, requestID: requestID, keepAlive: keepAlive)
        case (.GET, "/bans"):
            let bans = core.limits.activeBans().map { ban in
                JSONValue.object([("address", .string(ban.group)), ("remaining_seconds", .number(String(retryAfterSeconds(ban.remaining)))),
                                  ("bans", .number(String(ban.bans)))])
            }
            GatewayResponder.send(context, answering: head, status: .ok, body: JSONValue.object([("bans", .array(bans))]).serialized, requestID: requestID, keepAlive: keepAlive)
        case (.DELETE, _) where path.hasPrefix("/bans/"):
            guard let address = IPAddress(String(path.dropFirst("/bans/".count))) else {
                return GatewayResponder.send(context, answering: head, error: .badRequest("Not an IP address: \(path.dropFirst(6))", code: "invalid_address"),
                                             requestID: requestID, keepAlive: keepAlive)
            }
            let lifted = core.limits.unban(address)
            core.logger.info("unban requested", metadata: ["address": "\(address)", "was_banned": "\(lifted)"])
            GatewayResponder.send(context, answering: head, status: lifted ? .ok : .notFound, body: "{\"unbanned\":\(lifted)}", requestID: requestID, keepAlive: keepAlive)
        case (.GET, "/metrics"):
            GatewayResponder.send(context, answering: head, status: .ok, body: core.metrics.exposition(), contentType: "text/plain; version=0.0.4; charset=utf-8",
                                  requestID: requestID, keepAlive: keepAlive)
        default:
            GatewayResponder.send(context, answering: head, error: .notFound(head.method.rawValue, path), requestID: requestID, keepAlive: keepAlive)
        }
    }
}
