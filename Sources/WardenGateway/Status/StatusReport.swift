import WardenJSON

/// `warden status`: one screen of what an operator checks first, gathered by the CLI and judged here (pure, so
/// every verdict is tested without a host). Down: vLLM or the gateway cannot serve. Degraded: serving, but a unit
/// is not active, the KV cache is nearly full, requests queue beyond the running batch, or vLLM failed recently.
public struct StatusReport: Sendable {
    public struct Unit: Sendable {
        public var name: String
        /// `nil`: systemd is absent or the unit is not installed.
        public var activeState: String?
        public var subState: String?
        public var restarts: Int?
        /// What the service last told systemd with `STATUS=` (the gateway's `listening on …`, `reloaded: …`); only
        /// while it runs, since systemd keeps the last text after the service has stopped or failed.
        public var statusText: String?
        public init(name: String, activeState: String?, subState: String? = nil, restarts: Int? = nil, statusText: String? = nil) {
            self.name = name
            self.activeState = activeState
            self.subState = subState
            self.restarts = restarts
            let running = ["active", "reloading", "deactivating"].contains(activeState ?? "")
            self.statusText = running ? statusText.flatMap { $0.isEmpty ? nil : $0 } : nil
        }
    }

    public struct VLLM: Sendable {
        public var address: String
        /// `/health`'s status; `nil` when vLLM did not answer (`error` says why).
        public var health: Int?
        public var error: String?
        public var running: Double?
        public var waiting: Double?
        public var kvCacheUsage: Double?
        public init(address: String, health: Int?, error: String? = nil, metrics: String? = nil) {
            self.address = address
            self.health = health
            self.error = error
            if let metrics {
                running = PrometheusText.sum("vllm:num_requests_running", in: metrics)
                waiting = PrometheusText.sum("vllm:num_requests_waiting", in: metrics)
                kvCacheUsage = PrometheusText.sum("vllm:kv_cache_usage_perc", in: metrics)
            }
        }
    }

    public struct Gateway: Sendable {
        public var address: String
        /// The admin listener's `/status` document; `nil` when it did not answer (`error` says why).
        public var document: JSONValue?
        public var error: String?
        public init(address: String, document: JSONValue?, error: String? = nil) {
            self.address = address
            self.document = document
            self.error = error
        }
        var ready: Bool { document?["ready"]?.boolValue ?? false }
    }

    public struct Keys: Sendable, Equatable {
        public var active = 0, expired = 0, revoked = 0
        public init(active: Int = 0, expired: Int = 0, revoked: Int = 0) {
            self.active = active
            self.expired = expired
            self.revoked = revoked
        }
    }

    public enum Verdict: String, Sendable {
        case healthy, degraded, down
        /// `warden status`'s exit code: 0 healthy, 1 degraded, 3 down (2 stays a usage error).
        public var exitCode: Int32 { switch self { case .healthy: 0; case .degraded: 1; case .down: 3 } }
    }

    public var units: [Unit]
    public var vllm: VLLM
    public var gateway: Gateway
    public var keys: Keys?

    public init(units: [Unit], vllm: VLLM, gateway: Gateway, keys: Keys?) {
        self.units = units
        self.vllm = vllm
        self.gateway = gateway
        self.keys = keys
    }

    /// The verdict and every reason for it.
    public var verdict: (Verdict, [String]) {
        var down: [String] = []
        var degraded: [String] = []
        if vllm.health != 200 { down.append("vLLM is not healthy at \(vllm.address): " + (vllm.health.map { "/health answered \($0)" } ?? vllm.error ?? "no answer")) }
        if gateway.document == nil {
            down.append("the gateway's admin listener at \(gateway.address) did not answer: \(gateway.error ?? "no answer")")
        } else if !gateway.ready {
            down.append("the gateway is not ready: " + (gateway.document?["upstream_error"]?.stringValue ?? (gateway.document?["draining"]?.boolValue == true ? "draining" : "unknown")))
        }
        for unit in units {
            guard let state = unit.activeState else { continue }
            if state != "active" { degraded.append("\(unit.name) is \(state)" + (unit.subState.map { " (\($0))" } ?? "")) }
            if let restarts = unit.restarts, restarts > 0 { degraded.append("\(unit.name) restarted \(restarts) time(s)") }
        }
        if let usage = vllm.kvCacheUsage, usage >= 0.9 { degraded.append("vLLM's KV cache is \(Int((usage * 100).rounded()))% used") }
        if let waiting = vllm.waiting, let running = vllm.running, waiting > 0, waiting >= running {
            degraded.append("\(Int(waiting)) requests wait in vLLM's queue (\(Int(running)) running)")
        }
        let failures = ["upstream_unavailable", "upstream_failed"].reduce(0) { $0.saturatingAdded(count(gateway.document?["rejections"]?[$1])) }
        if failures > 0 { degraded.append("\(failures) request(s) failed on vLLM's side in the last \(window) minutes") }
        if !down.isEmpty { return (.down, down + degraded) }
        return degraded.isEmpty ? (.healthy, []) : (.degraded, degraded)
    }

    private var window: Int { max(1, gateway.document?["rejections_window_minutes"]?.intValue ?? 5) }

    /// A count from the admin listener's document: a number below zero, or none, reads as 0.
    private func count(_ value: JSONValue?) -> Int { max(0, value?.intValue ?? 0) }

    public var text: String {
        let (verdict, reasons) = verdict
        var lines = ["status: \(verdict.rawValue.uppercased())"] + reasons.map { "  - \($0)" }
        lines.append("")
        for unit in units {
            let state = unit.activeState.map { "\($0)" + (unit.subState.map { " (\($0))" } ?? "") + (unit.restarts.map { ", \($0) restarts" } ?? "")
                + (unit.statusText.map { ": \($0)" } ?? "") }
            lines.append("\(unit.name.padding(24))\(state ?? "not installed (or no systemd)")")
        }
        let load = [("running", vllm.running), ("waiting", vllm.waiting)].compactMap { name, value in value.map { "\(Int($0)) \(name)" } }
            + (vllm.kvCacheUsage.map { ["KV cache \(Int(($0 * 100).rounded()))%"] } ?? [])
        lines.append("\("vLLM".padding(24))\(vllm.health == 200 ? "healthy" : "NOT healthy") at \(vllm.address)" + (load.isEmpty ? "" : ": " + load.joined(separator: ", ")))
        if let document = gateway.document {
            let inFlight = count(document["in_flight"])
            lines.append("\("gateway".padding(24))\(gateway.ready ? "ready" : "NOT ready") (admin \(gateway.address)): \(inFlight) in flight, \(count(document["bans"])) banned address(es)")
            let rejections = document["rejections"]?.objectValue ?? []
            lines.append("\("refusals (last \(window) min)".padding(24))" + (rejections.isEmpty ? "none" : rejections.map { "\($0.key) \(count($0.value))" }.joined(separator: ", ")))
        } else {
            lines.append("\("gateway".padding(24))unreachable at \(gateway.address)")
        }
        if let keys { lines.append("\("keys".padding(24))\(keys.active) active, \(keys.expired) expired, \(keys.revoked) revoked") }
        return lines.joined(separator: "\n")
    }

    public var json: JSONValue {
        let (verdict, reasons) = verdict
        let unitList: [JSONValue] = units.map(Self.json)
        let vllmObject: JSONValue = .object([
            ("address", .string(vllm.address)), ("health_status", Self.json(vllm.health)), ("error", Self.json(vllm.error)),
            ("requests_running", Self.json(vllm.running)), ("requests_waiting", Self.json(vllm.waiting)),
            ("kv_cache_usage", Self.json(vllm.kvCacheUsage)),
        ])
        let gatewayObject: JSONValue = .object([("admin_address", .string(gateway.address)), ("status", gateway.document ?? .null),
                                                ("error", Self.json(gateway.error))])
        var keyObject = JSONValue.null
        if let keys {
            keyObject = .object([("active", Self.json(keys.active)), ("expired", Self.json(keys.expired)), ("revoked", Self.json(keys.revoked))])
        }
        return .object([("status", .string(verdict.rawValue)), ("reasons", .array(reasons.map(JSONValue.string))), ("units", .array(unitList)),
                        ("vllm", vllmObject), ("gateway", gatewayObject), ("keys", keyObject)])
    }

    private static func json(_ unit: Unit) -> JSONValue {
        .object([("name", .string(unit.name)), ("active_state", json(unit.activeState)), ("sub_state", json(unit.subState)),
                 ("restarts", json(unit.restarts)), ("status_text", json(unit.statusText))])
    }

    private static func json(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
    private static func json(_ value: Int?) -> JSONValue { value.map { .number(String($0)) } ?? .null }
    private static func json(_ value: Double?) -> JSONValue { value.map { .number(String($0)) } ?? .null }
}

/// Reads sample values from Prometheus' text exposition.
public enum PrometheusText {
    /// The sum of every series of `name` (vLLM labels its gauges by model and engine); `nil` when absent.
    public static func sum(_ name: String, in text: String) -> Double? {
        var total: Double?
        for line in text.split(separator: "\n") where line.hasPrefix(name) && !line.hasPrefix("#") {
            let rest = line.dropFirst(name.count)
            guard rest.first == "{" || rest.first == " " else { continue }
            let valueText = rest.first == "{" ? rest.drop { $0 != "}" }.dropFirst() : rest
            // These are counts and a fraction: a value that is not a finite, non-negative number is not one
            // (`NaN`, `+Inf` and `1e300` trapped the conversions to whole numbers), and a sum stays printable.
            guard let value = Double(valueText.split(separator: " ").first ?? ""), value.isFinite, value >= 0 else { continue }
            total = min((total ?? 0) + value, 1e15)
        }
        return total
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
}
