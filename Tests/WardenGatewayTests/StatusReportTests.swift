import Foundation
import Testing
import WardenJSON
@testable import WardenGateway

@Suite("status verdicts: healthy, degraded and down from what was gathered")
struct StatusReportTests {
    static let readyGateway = StatusReport.Gateway(address: "127.0.0.1:9091", document: try! JSONValue.parse(Array(
        #"{"ready":true,"draining":false,"upstream_error":null,"in_flight":2,"bans":0,"rejections_window_minutes":5,"rejections":{}}"#.utf8)))

    func report(units: [StatusReport.Unit] = [], health: Int? = 200, metrics: String = "", gateway: StatusReport.Gateway = readyGateway) -> StatusReport {
        StatusReport(units: units, vllm: StatusReport.VLLM(address: "127.0.0.1:8000", health: health, metrics: metrics), gateway: gateway, keys: nil)
    }

    @Test("each condition gives its verdict and names itself")
    func verdicts() throws {
        let light = "vllm:num_requests_running{engine=\"0\",model_name=\"q\"} 3.0\nvllm:num_requests_waiting{engine=\"0\",model_name=\"q\"} 0.0\nvllm:kv_cache_usage_perc{engine=\"0\",model_name=\"q\"} 0.4\n"
        #expect(report(metrics: light).verdict.0 == .healthy)
        #expect(report(units: [.init(name: "vllm.service", activeState: nil)]).verdict.0 == .healthy, "no systemd: not a problem")
        let full = light.replacingOccurrences(of: "} 0.4", with: "} 0.95")
        #expect(report(metrics: full).verdict.1 == ["vLLM's KV cache is 95% used"])
        let queued = light.replacingOccurrences(of: "waiting{engine=\"0\",model_name=\"q\"} 0.0", with: "waiting{engine=\"0\",model_name=\"q\"} 7.0")
        #expect(report(metrics: queued).verdict.0 == .degraded)
        let failed = report(units: [.init(name: "vllm.service", activeState: "failed", subState: "failed", restarts: 4)])
        #expect(failed.verdict.0 == .degraded && failed.verdict.1.count == 2)
        #expect(report(health: 503).verdict.0 == .down)
        #expect(report(health: nil).verdict.0 == .down)
        let notReady = StatusReport.Gateway(address: "a", document: try JSONValue.parse(Array(#"{"ready":false,"upstream_error":"vLLM rejected the key"}"#.utf8)))
        #expect(report(gateway: notReady).verdict.1 == ["the gateway is not ready: vLLM rejected the key"])
        #expect(report(gateway: .init(address: "a", document: nil, error: "refused")).verdict.0 == .down)
        #expect(StatusReport.Verdict.down.exitCode == 3 && StatusReport.Verdict.degraded.exitCode == 1)
    }

    @Test("a unit's systemd status line (the gateway's STATUS=) is shown after its state, and in JSON")
    func unitStatusText() {
        let units: [StatusReport.Unit] = [.init(name: "warden-gateway.service", activeState: "active", subState: "running", restarts: 0,
                                                statusText: "reloaded: 3 keys, 4 endpoints"),
                                          .init(name: "vllm.service", activeState: "active", subState: "running", restarts: 0, statusText: "")]
        let shown = report(units: units)
        #expect(shown.text.contains("warden-gateway.service  active (running), 0 restarts: reloaded: 3 keys, 4 endpoints\n"))
        #expect(shown.text.contains("vllm.service            active (running), 0 restarts\n"), "an empty status line adds nothing")
        #expect(shown.json.serialized.contains(#""restarts":0,"status_text":"reloaded: 3 keys, 4 endpoints"}"#))
        #expect(shown.json.serialized.contains(#""restarts":0,"status_text":null}"#))
        let stopped = report(units: [.init(name: "warden-gateway.service", activeState: "failed", subState: "failed", restarts: 1, statusText: "draining 3 in-flight requests")])
        #expect(stopped.text.contains("warden-gateway.service  failed (failed), 1 restarts\n"), "systemd's last text outlives the process: not shown")
    }

    @Test("Prometheus samples are summed across label sets; comments and other names are ignored")
    func prometheus() {
        let text = "# HELP vllm:num_requests_running x\nvllm:num_requests_running{engine=\"0\"} 2\nvllm:num_requests_running{engine=\"1\"} 3.5\nvllm:num_requests_running_total 9\n"
        #expect(PrometheusText.sum("vllm:num_requests_running", in: text) == 5.5)
        #expect(PrometheusText.sum("vllm:absent", in: text) == nil)
    }

    @Test("hostile values never trap: NaN, infinities, 1e300 and negative gauges are not counts; counters near Int.max saturate")
    func hostileValues() throws {
        for value in ["NaN", "+Inf", "-Inf", "1e300", "-5"] {
            let metrics = "vllm:num_requests_running \(value)\nvllm:num_requests_waiting \(value)\nvllm:kv_cache_usage_perc \(value)\n"
            let hostile = report(metrics: metrics)
            #expect(!hostile.text.isEmpty, "\(value)")
            #expect((try? JSONValue.parse(Array(hostile.json.serialized.utf8))) != nil, "JSON output stays JSON for \(value)")
        }
        #expect(PrometheusText.sum("a", in: "a 1e300\na 1e300\n") == 1e15)
        let overflowing = StatusReport.Gateway(address: "a", document: try JSONValue.parse(Array(
            #"{"ready":true,"in_flight":-7,"rejections_window_minutes":-3,"rejections":{"upstream_unavailable":9223372036854775807,"upstream_failed":1}}"#.utf8)))
        let saturated = report(gateway: overflowing)
        #expect(saturated.verdict.1 == ["\(Int.max) request(s) failed on vLLM's side in the last 1 minutes"])
        #expect(saturated.text.contains(": 0 in flight"))
    }
}
