import WardenTestSupport
import Foundation
import Testing
import VLLMSim

@Suite("vllm-sim: SSE framing as vLLM writes it")
struct StreamingTests {
    let configuration = SimulatorConfiguration(outputTokens: 3)

    @Test("chat stream: role chunk, one chunk per token, finish on the last, no usage, then [DONE]")
    func chatWithoutUsage() async throws {
        try await withSimulator(configuration) { _, port throws in
            let response = try request(port: port, "POST", "/v1/chat/completions", json: chat(#","stream":true"#))
            #expect(response.status == 200)
            #expect(response.headers["content-type"] == "text/event-stream; charset=utf-8")
            #expect(response.body.hasSuffix("data: [DONE]\n\n"))
            let payloads = events(response.body)
            #expect(payloads.count == 5)
            #expect(payloads.last == "[DONE]")
            let chunks = try payloads.dropLast().map(jsonObject)
            let firstChoice = try #require((chunks[0]["choices"] as? [[String: Any]])?.first)
            #expect((firstChoice["delta"] as? [String: String]) == ["role": "assistant", "content": ""])
            for (index, chunk) in chunks.enumerated() {
                #expect(chunk["object"] as? String == "chat.completion.chunk")
                #expect(chunk["usage"] == nil)
                let choice = try #require((chunk["choices"] as? [[String: Any]])?.first)
                #expect((choice["finish_reason"] as? String) == (index == 3 ? "stop" : nil))
            }
        }
    }

    @Test("include_usage adds one usage chunk with empty choices; usage matches the tokens streamed")
    func chatWithUsage() async throws {
        try await withSimulator(configuration) { _, port throws in
            let body = chat(#","stream":true,"stream_options":{"include_usage":true}"#)
            let payloads = events(try request(port: port, "POST", "/v1/chat/completions", json: body).body)
            #expect(payloads.count == 6)
            let usageChunk = try jsonObject(payloads[4])
            #expect((usageChunk["choices"] as? [Any])?.isEmpty == true)
            let usage = try #require(usageChunk["usage"] as? [String: Int])
            #expect(usage["completion_tokens"] == 3)
            #expect(usage["total_tokens"] == usage["prompt_tokens"]! + 3)
            for payload in payloads.prefix(4) { #expect(try jsonObject(payload)["usage"] == nil) }
        }
    }

    @Test("continuous_usage_stats puts cumulative usage on every chunk, only together with include_usage (which `{}` turns on, as in vLLM)")
    func continuousUsage() async throws {
        try await withSimulator(configuration) { _, port throws in
            let both = chat(#","stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}"#)
            let payloads = events(try request(port: port, "POST", "/v1/chat/completions", json: both).body).dropLast()
            let completions = try payloads.map { try #require((try jsonObject($0)["usage"] as? [String: Int])?["completion_tokens"]) }
            #expect(completions == [0, 1, 2, 3, 3])
            let alone = chat(#","stream":true,"stream_options":{"include_usage":false,"continuous_usage_stats":true}"#)
            let plain = events(try request(port: port, "POST", "/v1/chat/completions", json: alone).body)
            #expect(!plain.joined().contains("usage"))
            // vLLM's StreamOptions default include_usage to true: an empty object asks for the final usage chunk.
            let empty = events(try request(port: port, "POST", "/v1/chat/completions", json: chat(#","stream":true,"stream_options":{}"#)).body)
            #expect(empty.filter { $0.contains("usage") }.count == 1)
            #expect(try (jsonObject(empty[empty.count - 2])["choices"] as? [Any])?.isEmpty == true)
        }
    }

    @Test("completion stream has no role chunk and carries text")
    func completionStream() async throws {
        try await withSimulator(configuration) { _, port throws in
            let body = #"{"prompt":"Once upon","stream":true,"max_tokens":2,"stream_options":{"include_usage":true}}"#
            let payloads = events(try request(port: port, "POST", "/v1/completions", json: body).body)
            #expect(payloads.count == 4)
            let first = try #require((try jsonObject(payloads[0])["choices"] as? [[String: Any]])?.first)
            #expect(first["text"] is String)
            #expect(try jsonObject(payloads[0])["object"] as? String == "text_completion")
            let last = try #require((try jsonObject(payloads[1])["choices"] as? [[String: Any]])?.first)
            #expect(last["finish_reason"] as? String == "length")
        }
    }

    @Test("n choices stream with their indexes and usage sums them")
    func severalChoices() async throws {
        try await withSimulator(configuration) { _, port throws in
            let body = chat(#","stream":true,"n":2,"stream_options":{"include_usage":true}"#)
            let payloads = events(try request(port: port, "POST", "/v1/chat/completions", json: body).body)
            #expect(payloads.count == 2 + 2 * 3 + 2)
            let usage = try #require(try jsonObject(payloads[payloads.count - 2])["usage"] as? [String: Int])
            #expect(usage["completion_tokens"] == 6)
        }
    }

    @Test("errors before the first chunk are plain JSON with a 4xx status")
    func errorsBeforeStream() async throws {
        try await withSimulator(configuration) { _, port throws in
            let unknown = try request(port: port, "POST", "/v1/chat/completions", json: #"{"model":"gpt-4","messages":[],"stream":true}"#)
            #expect(unknown.status == 404)
            #expect(unknown.body == #"{"error":{"message":"The model `gpt-4` does not exist.","type":"NotFoundError","param":null,"code":404}}"#)
            let options = try request(port: port, "POST", "/v1/chat/completions", json: chat(#","stream_options":{"include_usage":true}"#))
            #expect(options.status == 400)
            #expect(options.body.contains("Stream options can only be defined when `stream=True`."))
            #expect(try request(port: port, "POST", "/v1/chat/completions", json: chat(#","n":0"#)).status == 400)
            #expect(try request(port: port, "POST", "/v1/chat/completions", json: chat(#","max_tokens":"many""#)).status == 400)
            #expect(try request(port: port, "POST", "/v1/chat/completions", json: "{not json").status == 400)
            let long = try request(port: port, "POST", "/v1/completions", json: #"{"prompt":"hi","max_tokens":40000}"#)
            #expect(long.status == 400)
            #expect(long.body.contains("maximum context length is 32768 tokens"))
        }
    }
}
