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
    /// The configuration, limits and Responses ids as every admission reads them.
    let admission: Admission.Shared
    /// Per key, model, route and hour: written to the key store every second by ``GatewayServer``.
    let ledger = UsageLedger()

    init(configuration: GatewayConfiguration, state: GatewayState, metrics: GatewayMetrics, accessLog: any AccessLogSink, logger: Logger) {
        self.configuration = configuration
        self.state = state
        self.pool = UpstreamPool(host: configuration.upstreamHost, port: configuration.upstreamPort,
                                 connectTimeout: configuration.upstreamConnectTimeout, readTimeout: configuration.upstreamReadTimeout)
        self.metrics = metrics
        self.accessLog = accessLog
        self.logger = logger
        self.limits = GatewayLimits(configuration.limits, wallClock: configuration.wallClock)
        admission = Admission.Shared(configuration: configuration, limits: limits, responses: responses)
    }

    /// Logs and counts one finished request, and adds it to the usage ledger when a key made it.
    func record(_ record: AccessRecord, route: String) {
        accessLog.write(record.json(at: wallClockNow()))
        metrics.countRequest(route: route, status: record.status, key: record.key ?? "none")
        let refusal = record.decision.hasPrefix("rejected:") ? String(record.decision.dropFirst("rejected:".count)) : ""
        if !refusal.isEmpty { metrics.countRejection(refusal) }
        guard let key = record.key else { return }
        metrics.countTokens(key: key, prompt: record.promptTokens ?? 0, completion: record.completionTokens ?? 0)
        let epoch = limits.epoch
        // The model only when vLLM served it: a name it refused (any string a client sends) is no row of its own,
        // or one key could add a ledger row per request for as long as rows are kept.
        let served = record.upstreamStatus.map { (200..<300).contains($0) } == true
        ledger.add(UsageCell(key: key, model: served ? record.model ?? "" : "", route: route, hour: epoch - epoch % 3600, outcome: refusal),
                   UsageCounts(requests: 1, promptTokens: record.promptTokens ?? 0, completionTokens: record.completionTokens ?? 0,
                               chargedTokens: record.chargedTokens ?? 0))
    }
}
