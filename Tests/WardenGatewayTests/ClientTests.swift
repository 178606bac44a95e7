import Foundation
import Testing
import VLLMSim
import WardenConfig
import WardenTestSupport
@testable import WardenGateway

/// The clients vLLM users already run, pointed at the gateway unchanged (installed pinned by scripts/test from
/// scripts/requirements-test.txt): each must succeed, and the gateway's access log and `/metrics` must count
/// exactly what the client counted.
@Suite("gateway: the clients vLLM users already run work through it unchanged")
struct ClientTests {
    /// The last line a check script printed: its JSON summary.
    func summary(_ output: String) throws -> [String: Any] {
        try jsonObject(String(try #require(output.split(separator: "\n").last, "no output")))
    }

    func sum(_ records: [[String: Any]], _ field: String) -> Int { records.reduce(0) { $0 + ($1[field] as? Int ?? 0) } }

    @Test("guidellm with its default backend (GET /health validation on, streamed chat) completes a short concurrent profile; access log and metrics count its requests and tokens")
    func guidellm() async throws {
        let simulation = SimulatorConfiguration(servedModelName: "qwen", timeToFirstToken: .milliseconds(20), interTokenLatency: .milliseconds(2),
                                                outputTokens: 64)
        try await withGateway(simulator: simulation) { harness in
            #expect(try await harness.waitUntilReady())
            let result = try await runPythonScript("guidellm_check.py", ["http://127.0.0.1:\(harness.port)", harness.key, "4", "12", "16"])
            #expect(result.status == 0, "\(result.output)")
            guard result.status == 0 else { return }
            let counted = try summary(result.output)
            #expect(counted["validate_backend"] as? Bool == true && counted["stream"] as? Bool == true, "guidellm's defaults: \(counted)")
            let requests = try #require(counted["successful"] as? Int), output = try #require(counted["output_tokens"] as? Int)
            let prompt = try #require(counted["prompt_tokens"] as? Int)
            #expect(requests == 12 && counted["errored"] as? Int == 0)
            #expect(output == 12 * 16, "guidellm asks for 16 tokens a request")

            #expect(try await eventually { harness.gateway.inFlight == 0 })
            let records = try harness.accessRecords()
            let chats = records.filter { $0["path"] as? String == "/v1/chat/completions" }
            #expect(chats.count == requests && chats.allSatisfy { $0["status"] as? Int == 200 }, "\(chats)")
            #expect(sum(chats, "tokens_out") == output)
            #expect(sum(chats, "tokens_in") == prompt)
            #expect(!records.contains { ($0["path"] as? String)?.hasPrefix("/health") == true }, "health probes are answered, not logged")
            #expect(try harness.simRoute("POST /v1/chat/completions").generated == output)

            let key = try #require(APIKeyToken(harness.key[...])).publicID
            #expect(try harness.metric(#"warden_requests_total{route="/v1/chat/completions",status="200",key="\#(key)"}"#) == Double(requests))
            #expect(try harness.metric(#"warden_tokens_total{key="\#(key)",direction="out"}"#) == Double(output))
            #expect(try harness.metric(#"warden_tokens_total{key="\#(key)",direction="in"}"#) == Double(prompt))
        }
    }

    @Test("the LiteLLM SDK's hosted_vllm provider: chat, streamed chat and embeddings succeed; the gateway's 429 is its RateLimitError; access log and metrics count what it counted")
    func litellm() async throws {
        try await withGateway(simulator: SimulatorConfiguration(servedModelName: "qwen", outputTokens: 8)) { harness in
            let (limited, limitedRecord) = try harness.store.create(name: "one-a-minute", requestsPerMinute: 1, burst: 1)
            try harness.gateway.reload()
            let result = try await runPythonScript("litellm_check.py", ["http://127.0.0.1:\(harness.port)/v1", harness.key, limited.text, "qwen"])
            #expect(result.status == 0, "\(result.output)")
            guard result.status == 0 else { return }
            let counted = try summary(result.output)
            let served = try #require(counted["ok"] as? Int), refused = try #require(counted["rate_limited"] as? Int)
            #expect(served == 4 && refused == 1, "\(counted)")

            #expect(try await eventually { harness.gateway.inFlight == 0 })
            let records = try harness.accessRecords()
            #expect(records.count == served + refused, "one access-log line per request the client made: \(records)")
            let ok = records.filter { $0["status"] as? Int == 200 }, tooMany = records.filter { $0["status"] as? Int == 429 }
            #expect(ok.count == served)
            #expect(tooMany.count == refused && tooMany.first?["key"] as? String == limitedRecord.publicID)
            #expect((tooMany.first?["decision"] as? String)?.hasPrefix("rejected:rate") == true, "\(tooMany)")
            #expect(sum(ok, "tokens_in") == counted["prompt_tokens"] as? Int)
            #expect(sum(ok, "tokens_out") == counted["completion_tokens"] as? Int)
            #expect(Set(ok.compactMap { $0["path"] as? String }) == ["/v1/chat/completions", "/v1/embeddings"])

            let key = try #require(APIKeyToken(harness.key[...])).publicID
            #expect(try harness.metric(#"warden_requests_total{route="/v1/chat/completions",status="200",key="\#(key)"}"#) == 2)
            #expect(try harness.metric(#"warden_requests_total{route="/v1/embeddings",status="200",key="\#(key)"}"#) == 1)
            #expect(try harness.metric(#"warden_requests_total{route="/v1/chat/completions",status="429",key="\#(limitedRecord.publicID)"}"#) == 1)
            let tokensIn = try harness.metric(#"warden_tokens_total{key="\#(key)",direction="in"}"#)
                + harness.metric(#"warden_tokens_total{key="\#(limitedRecord.publicID)",direction="in"}"#)
            let tokensOut = try harness.metric(#"warden_tokens_total{key="\#(key)",direction="out"}"#)
                + harness.metric(#"warden_tokens_total{key="\#(limitedRecord.publicID)",direction="out"}"#)
            #expect(tokensIn == Double(try #require(counted["prompt_tokens"] as? Int)))
            #expect(tokensOut == Double(try #require(counted["completion_tokens"] as? Int)))
        }
    }
}
