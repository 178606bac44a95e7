import NIOCore
import NIOHTTP1
import WardenConfig
import WardenJSON

/// The admin listener (loopback by default): liveness, readiness and Prometheus metrics — never proxied.
final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = IOData

    private let core: GatewayCore
    /// The same strict parser as the public listener's; every answer is written before the next request is read.
    private var parser = ClientRequestParser()
    private var head: ClientHead?
    private var closing = false

    init(core: GatewayCore) {
        self.core = core
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After an answer that closes the connection, nothing more is read as a request.
        guard !closing else { return }
        do {
            try parser.parse(unwrapInboundIn(data)) { part in
                switch part {
                case .head(let requestHead): head = requestHead
                case .body: break
                case .end:
                    if let requestHead = head { respond(context: context, head: requestHead) }
                    head = nil
                }
                return !closing
            }
        } catch {
            // Input the parser refuses gets 400 (431 for an oversized head) and the connection closes.
            closing = true
            GatewayResponder.send(context, answering: nil, error: error.headTooLarge ? .headersTooLarge : .badRequest("Malformed HTTP request.", code: "malformed_request"),
                                  requestID: RequestIDs.next(), keepAlive: false)
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
                ("bans", .number(String(core.limits.activeBans().count))),
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
