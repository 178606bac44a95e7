import Logging
import NIOCore
import NIOHTTP1
import WardenNIOSupport

/// What every connection of one gateway shares.
final class GatewayCore: Sendable {
    let configuration: GatewayConfiguration
    let state: GatewayState
    let pool: UpstreamPool
    let metrics: GatewayMetrics
    let accessLog: any AccessLogSink
    let logger: Logger
    let limits: GatewayLimits
    /// Responses API ids per key (retrieve, cancel and continue only one's own).
    let responses = ResponseRegistry()

    init(configuration: GatewayConfiguration, state: GatewayState, metrics: GatewayMetrics, accessLog: any AccessLogSink, logger: Logger) {
        self.configuration = configuration
        self.state = state
        self.pool = UpstreamPool(host: configuration.upstreamHost, port: configuration.upstreamPort,
                                 connectTimeout: configuration.upstreamConnectTimeout, readTimeout: configuration.upstreamReadTimeout)
        self.metrics = metrics
        self.accessLog = accessLog
        self.logger = logger
        self.limits = GatewayLimits(configuration.limits)
    }

    /// Logs and counts one finished request.
    func record(_ record: AccessRecord, route: String) {
        accessLog.write(record.json(time: rfc3339Now()))
        metrics.countRequest(route: route, status: record.status, key: record.key ?? "none")
        if record.decision.hasPrefix("rejected:") { metrics.countRejection(String(record.decision.dropFirst("rejected:".count))) }
        if let key = record.key { metrics.countTokens(key: key, prompt: record.promptTokens ?? 0, completion: record.completionTokens ?? 0) }
    }
}

/// Writes complete responses the gateway produces itself: every one carries the request id.
enum GatewayResponder {
    static func send(_ context: ChannelHandlerContext, status: HTTPResponseStatus, body: String, contentType: String = "application/json",
                     requestID: String, keepAlive: Bool, extraHeaders: [(String, String)] = []) {
        HTTPResponseWriter.respond(context, status: status, contentType: contentType, body: body, keepAlive: keepAlive,
                                   extraHeaders: [("x-request-id", requestID)] + extraHeaders)
    }

    static func send(_ context: ChannelHandlerContext, error: GatewayError, requestID: String, keepAlive: Bool) {
        send(context, status: error.status, body: error.body, requestID: requestID, keepAlive: keepAlive, extraHeaders: error.headers)
    }
}
