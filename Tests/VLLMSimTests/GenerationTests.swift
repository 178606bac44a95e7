import WardenTestSupport
import Foundation
import Testing
import VLLMSim

@Suite("vllm-sim: generation, tokenizer and metrics")
struct GenerationTests {
    @Test("non-streaming responses always carry usage, and prompt tokens agree with /tokenize")
    func usageMatchesTokenize() async throws {
        try await withSimulator { _, port throws in
            let messages = #"[{"role":"system","content":"Be brief."},{"role":"user","content":"Héllo, wörld"}]"#
            let response = try jsonObject(try request(port: port, "POST", "/v1/chat/completions",
                                                      json: #"{"messages":\#(messages)}"#).body)
            let usage = try #require(response["usage"] as? [String: Any])
            let tokenized = try jsonObject(try request(port: port, "POST", "/tokenize", json: #"{"messages":\#(messages)}"#).body)
            #expect(usage["prompt_tokens"] as? Int == tokenized["count"] as? Int)
            #expect(response["object"] as? String == "chat.completion")

            let completion = try jsonObject(try request(port: port, "POST", "/v1/completions", json: #"{"prompt":"Hello there"}"#).body)
            let promptTokens = (completion["usage"] as? [String: Any])?["prompt_tokens"] as? Int
            let plain = try jsonObject(try request(port: port, "POST", "/tokenize", json: #"{"prompt":"Hello there"}"#).body)
            #expect(promptTokens == plain["count"] as? Int)
        }
    }

    @Test("max_completion_tokens wins over max_tokens; a short cap ends with length")
    func maxTokens() async throws {
        try await withSimulator(SimulatorConfiguration(outputTokens: 10)) { _, port throws in
            let capped = try jsonObject(try request(port: port, "POST", "/v1/chat/completions",
                                                    json: chat(#","max_tokens":50,"max_completion_tokens":4"#)).body)
            #expect((capped["usage"] as? [String: Any])?["completion_tokens"] as? Int == 4)
            #expect(((capped["choices"] as? [[String: Any]])?.first?["finish_reason"]) as? String == "length")
            let natural = try jsonObject(try request(port: port, "POST", "/v1/chat/completions", json: chat(#","max_tokens":50"#)).body)
            #expect((natural["usage"] as? [String: Any])?["completion_tokens"] as? Int == 10)
            #expect(((natural["choices"] as? [[String: Any]])?.first?["finish_reason"]) as? String == "stop")
            let ignoreEOS = try jsonObject(try request(port: port, "POST", "/v1/completions",
                                                       json: #"{"prompt":"x","max_tokens":25,"ignore_eos":true}"#).body)
            #expect((ignoreEOS["usage"] as? [String: Any])?["completion_tokens"] as? Int == 25)
        }
    }

    @Test("the same prompt generates the same text")
    func deterministic() async throws {
        try await withSimulator { _, port throws in
            let first = try jsonObject(try request(port: port, "POST", "/v1/completions", json: #"{"prompt":"seed"}"#).body)
            let second = try jsonObject(try request(port: port, "POST", "/v1/completions", json: #"{"prompt":"seed"}"#).body)
            let text = { (response: [String: Any]) in (response["choices"] as? [[String: Any]])?.first?["text"] as? String }
            #expect(text(first) != nil)
            #expect(text(first) == text(second))
        }
    }

    @Test("tokenize and detokenize round-trip any text")
    func tokenizerRoundTrip() async throws {
        try await withSimulator { _, port throws in
            let tokenized = try jsonObject(try request(port: port, "POST", "/tokenize",
                                                       json: #"{"prompt":"naïve café ☕","add_special_tokens":false}"#).body)
            let tokens = try #require(tokenized["tokens"] as? [Int])
            #expect(tokenized["max_model_len"] as? Int == 32_768)
            let detokenized = try jsonObject(try request(port: port, "POST", "/detokenize", json: #"{"tokens":\#(tokens)}"#).body)
            #expect(detokenized["prompt"] as? String == "naïve café ☕")
            #expect(try request(port: port, "POST", "/detokenize", json: #"{"tokens":[42]}"#).status == 400)
        }
    }

    @Test("embeddings return one vector per input with usage")
    func embeddings() async throws {
        try await withSimulator { _, port throws in
            let response = try jsonObject(try request(port: port, "POST", "/v1/embeddings", json: #"{"input":["a","b"]}"#).body)
            #expect((response["data"] as? [Any])?.count == 2)
            #expect((response["usage"] as? [String: Any])?["prompt_tokens"] as? Int == 4)
        }
    }

    @Test("/metrics exposes vLLM's names with the model_name label and counts tokens")
    func metrics() async throws {
        try await withSimulator(SimulatorConfiguration(servedModelName: "qwen", outputTokens: 5)) { _, port throws in
            _ = try request(port: port, "POST", "/v1/chat/completions", json: #"{"messages":[{"role":"user","content":"hi"}]}"#)
            let text = try request(port: port, "GET", "/metrics").body
            for name in ["vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
                         "vllm:prompt_tokens_total", "vllm:request_success_total", "vllm:time_to_first_token_seconds_bucket"] {
                #expect(text.contains("\(name){engine=\"0\",model_name=\"qwen\""), "\(name)")
            }
            #expect(text.contains("vllm:generation_tokens_total{engine=\"0\",model_name=\"qwen\"} 5.0"))
            #expect(text.contains("finished_reason=\"stop\"} 1.0"))
            #expect(text.contains("vllm:time_to_first_token_seconds_count{engine=\"0\",model_name=\"qwen\"} 1.0"))
        }
    }

    @Test("/sim/stats counts requests and remembers the last headers; /sim/reset clears it")
    func statsAndReset() async throws {
        try await withSimulator { simulator, port throws in
            _ = try request(port: port, "POST", "/v1/completions", json: #"{"prompt":"hi","max_tokens":3}"#, headers: ["X-Probe": "42"])
            let stats = try jsonObject(try request(port: port, "GET", "/sim/stats").body)
            #expect((stats["requests"] as? [String: Int])?["POST /v1/completions"] == 1)
            #expect((stats["last_request_headers"] as? [String: String])?["x-probe"] == "42")
            #expect(stats["generated_tokens"] as? Int == 3)
            #expect(stats["completed"] as? Int == 1)
            #expect(try request(port: port, "POST", "/sim/reset").status == 200)
            #expect(try simulator.stat("completed") == 0)
        }
    }

    @Test("keep-alive: several requests on one connection")
    func keepAlive() async throws {
        try await withSimulator { _, port throws in
            let connection = try TestHTTPConnection(port: port)
            for _ in 0..<3 {
                connection.post("/v1/completions", json: #"{"prompt":"hi","max_tokens":1,"stream":true}"#)
                #expect(try connection.readResponse().body.hasSuffix("data: [DONE]\n\n"))
                connection.get("/v1/models")
                #expect(try connection.readResponse().status == 200)
            }
        }
    }
}

@Suite("vllm-sim connection handling")
struct SimulatorConnectionTests {
    @Test("without keep-alive every response, streamed or not, says connection: close and the connection ends after it")
    func noKeepAlive() async throws {
        try await withSimulator(SimulatorConfiguration(keepAlive: false)) { _, port in
            for stream in [false, true] {
                let connection = try TestHTTPConnection(port: port)
                connection.post("/v1/chat/completions", json: chat(stream ? #","stream":true"# : ""))
                let response = try connection.readResponse()
                #expect(response.status == 200)
                #expect(response.headers["connection"] == "close")
                _ = try connection.readToClose()
                #expect(connection.closedByPeer)
            }
        }
        try await withSimulator { _, port in
            let connection = try TestHTTPConnection(port: port)
            connection.post("/v1/chat/completions", json: chat())
            #expect(try connection.readResponse().headers["connection"] == nil, "kept alive by default, as uvicorn does")
        }
    }
}
