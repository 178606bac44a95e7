import WardenJSON

/// A Grafana dashboard for vLLM and the gateway side by side, installed for the operator to import
/// (Dashboards → Import; it asks for the Prometheus data source).
public enum GrafanaDashboard {
    /// Where `warden install` puts it.
    public static let path = "/usr/share/warden/monitoring/warden-dashboard.json"

    struct Panel {
        var title: String
        var unit: String
        /// PromQL and its legend.
        var queries: [(String, String)]
    }

    static let panels: [Panel] = [
        Panel(title: "vLLM: requests running and waiting", unit: "short",
              queries: [("vllm:num_requests_running", "running"), ("vllm:num_requests_waiting", "waiting")]),
        Panel(title: "vLLM: KV cache usage", unit: "percentunit", queries: [("vllm:kv_cache_usage_perc", "KV cache")]),
        Panel(title: "vLLM: time to first token", unit: "s", queries: [
            ("histogram_quantile(0.5, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket[5m])))", "p50"),
            ("histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket[5m])))", "p95"),
        ]),
        Panel(title: "vLLM: tokens per second", unit: "short", queries: [
            ("rate(vllm:prompt_tokens_total[1m])", "prompt"), ("rate(vllm:generation_tokens_total[1m])", "generated"),
        ]),
        Panel(title: "Gateway: requests by status", unit: "reqps", queries: [("sum by (status) (rate(warden_requests_total[5m]))", "{{status}}")]),
        Panel(title: "Gateway: refusals by reason", unit: "reqps", queries: [("sum by (reason) (rate(warden_rejections_total[5m]))", "{{reason}}")]),
        Panel(title: "Gateway: requests by key", unit: "reqps", queries: [("sum by (key) (rate(warden_requests_total[5m]))", "{{key}}")]),
        Panel(title: "Gateway: tokens by key", unit: "short", queries: [("sum by (key, direction) (rate(warden_tokens_total[5m]))", "{{key}} {{direction}}")]),
        Panel(title: "Gateway: overhead (time the gateway adds)", unit: "s", queries: [
            ("histogram_quantile(0.5, sum by (le) (rate(warden_gateway_overhead_seconds_bucket[5m])))", "p50"),
            ("histogram_quantile(0.99, sum by (le) (rate(warden_gateway_overhead_seconds_bucket[5m])))", "p99"),
        ]),
        Panel(title: "Gateway: time to first token (as clients see it)", unit: "s", queries: [
            ("histogram_quantile(0.95, sum by (le) (rate(warden_time_to_first_token_seconds_bucket[5m])))", "p95"),
            ("histogram_quantile(0.95, sum by (le) (rate(warden_upstream_latency_seconds_bucket[5m])))", "p95 upstream total"),
        ]),
        Panel(title: "Gateway: in flight, bans, vLLM ready", unit: "short", queries: [
            ("warden_requests_in_flight", "in flight"), ("warden_bans_active", "banned addresses"), ("warden_upstream_ready", "vLLM ready"),
        ]),
        Panel(title: "Gateway: quota used per key", unit: "percentunit", queries: [("warden_quota_used_ratio", "{{key}} {{period}}")]),
    ]

    /// Every PromQL expression the dashboard uses.
    public static var expressions: [String] { panels.flatMap { $0.queries.map(\.0) } }

    public static var json: String {
        func string(_ text: String) -> JSONValue { .string(text) }
        func number(_ value: Int) -> JSONValue { .number(String(value)) }
        let datasource = JSONValue.object([("type", string("prometheus")), ("uid", string("${DS_PROMETHEUS}"))])
        let panels = panels.enumerated().map { index, panel in
            JSONValue.object([
                ("id", number(index + 1)), ("type", string("timeseries")), ("title", string(panel.title)), ("datasource", datasource),
                ("gridPos", .object([("h", number(8)), ("w", number(12)), ("x", number(index % 2 * 12)), ("y", number(index / 2 * 8))])),
                ("fieldConfig", .object([("defaults", .object([("unit", string(panel.unit))])), ("overrides", .array([]))])),
                ("targets", .array(panel.queries.enumerated().map { offset, query in
                    .object([("refId", string(String(UnicodeScalar(UInt8(65 + offset))))), ("datasource", datasource),
                             ("expr", string(query.0)), ("legendFormat", string(query.1))])
                })),
            ])
        }
        return JSONValue.object([
            ("__inputs", .array([.object([("name", string("DS_PROMETHEUS")), ("label", string("Prometheus")), ("type", string("datasource")),
                                          ("pluginId", string("prometheus")), ("pluginName", string("Prometheus"))])])),
            ("title", string("vLLM Warden")), ("uid", string("vllm-warden")), ("tags", .array([string("vllm"), string("warden")])),
            ("schemaVersion", number(39)), ("version", number(1)), ("editable", .bool(true)), ("refresh", string("30s")),
            ("time", .object([("from", string("now-6h")), ("to", string("now"))])), ("templating", .object([("list", .array([]))])),
            ("panels", .array(panels)),
        ]).serialized + "\n"
    }
}
