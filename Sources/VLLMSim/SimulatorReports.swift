import NIOCore
import WardenJSON

/// The text bodies of `/metrics` and `/sim/stats`.
enum SimulatorReports {
    /// Prometheus exposition with vLLM's metric names and its `model_name` / `engine` labels.
    static func metrics(_ counters: SimulatorState.Counters, model: String, maxNumSeqs: Int?) -> String {
        var quoted = ""
        quoted.appendJSONString(model)
        let labels = "engine=\"0\",model_name=\(quoted)"
        var text = ""
        func gauge(_ name: String, _ help: String, _ value: Double) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n\(name){\(labels)} \(value)\n"
        }
        func counter(_ name: String, _ help: String, _ value: Int) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) counter\n\(name){\(labels)} \(Double(value))\n"
        }
        gauge("vllm:num_requests_running", "Number of requests in model execution batches.", Double(counters.running))
        gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", Double(counters.waiting.count))
        let capacity = Double(maxNumSeqs ?? 256)
        gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", min(1, Double(counters.running) / capacity))
        counter("vllm:num_preemptions_total", "Cumulative number of preemption from the engine.", 0)
        counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.", counters.promptTokens)
        counter("vllm:generation_tokens_total", "Number of generation tokens processed.", counters.generatedTokens)
        text += "# HELP vllm:request_success_total Count of successfully processed requests.\n# TYPE vllm:request_success_total counter\n"
        for reason in ["stop", "length", "abort", "error"] {
            text += "vllm:request_success_total{\(labels),finished_reason=\"\(reason)\"} \(Double(counters.finishedByReason[reason] ?? 0))\n"
        }
        let histogram = counters.timeToFirstToken
        let name = "vllm:time_to_first_token_seconds"
        text += "# HELP \(name) Histogram of time to first token in seconds.\n# TYPE \(name) histogram\n"
        for (bound, count) in zip(histogram.bounds, histogram.cumulative) {
            text += "\(name)_bucket{\(labels),le=\"\(bound)\"} \(Double(count))\n"
        }
        text += "\(name)_bucket{\(labels),le=\"+Inf\"} \(Double(histogram.count))\n"
        text += "\(name)_count{\(labels)} \(Double(histogram.count))\n"
        text += "\(name)_sum{\(labels)} \(histogram.sum)\n"
        return text
    }

    /// The simulator's own statistics for tests.
    static func stats(_ counters: SimulatorState.Counters) -> String {
        let requests = JSONValue.object(counters.requests.sorted { $0.key < $1.key }.map { ($0.key, .number(String($0.value))) })
        let headers = JSONValue.object(counters.lastRequestHeaders.map { ($0.name.lowercased(), .string($0.value)) })
        let fields: [(key: String, value: JSONValue)] = [
            ("requests", requests),
            ("in_flight", .number(String(counters.running))),
            ("waiting", .number(String(counters.waiting.count))),
            ("completed", .number(String(counters.completed))),
            ("aborted", .number(String(counters.aborted))),
            ("failed", .number(String(counters.failed))),
            ("prompt_tokens", .number(String(counters.promptTokens))),
            ("generated_tokens", .number(String(counters.generatedTokens))),
            ("routes", .object(counters.tokensByRoute.sorted { $0.key < $1.key }.map {
                ($0.key, .object([("prompt_tokens", .number(String($0.value.prompt))), ("generated_tokens", .number(String($0.value.generated)))]))
            })),
            ("last_request_path", .string(counters.lastRequestPath)),
            ("last_request_headers", headers),
            ("last_request_body", .string(String(buffer: counters.lastRequestBody))),
        ]
        return JSONValue.object(fields).serialized
    }
}
