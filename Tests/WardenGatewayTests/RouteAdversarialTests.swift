import Foundation
import Testing
import VLLMSim
import WardenConfig
import WardenTestSupport
@testable import WardenGateway

/// The governance suite's tenant on the newer routes: multipliers (documents, conversations, output caps) are
/// refused up front, and streams cut short are charged at least what vllm-sim generated.
@Suite("gateway: an abusive tenant on the Responses, Messages, batch and pooling routes")
struct RouteAdversarialTests {
    func refusedUpFront(_ harness: GatewayHarness, _ path: String, _ body: String, expecting tokens: Int) throws {
        let response = try request(port: harness.port, "POST", path, json: body, headers: harness.bearer)
        #expect(response.status == 400 && response.body.contains("token_limit_exceeded"), "\(path): \(response.body)")
        #expect(response.body.contains("up to \(tokens) tokens"), "\(path): \(response.body)")
        #expect(try harness.upstreamRequests() == 0, "\(path) reached vLLM")
    }

    @Test("one query against 500 documents, 100 conversations × n 16, and a huge output cap: refused before vLLM")
    func multipliers() async throws {
        try await withGateway(configure: {
            RouteMeteringTests.allRoutes(&$0)
            $0.limits.tokensPerMinute = 2000
        }) { harness in
            let query = String(repeating: "q", count: 400)  // 101 tokens by the gateway's estimate
            let documents = Array(repeating: #""d""#, count: 500).joined(separator: ",")
            try refusedUpFront(harness, "/v1/rerank", #"{"query":"\#(query)","documents":[\#(documents)]}"#, expecting: 101 * 500 + 500)
            try refusedUpFront(harness, "/v1/score", #"{"text_1":"\#(query)","text_2":[\#(documents)]}"#, expecting: 101 * 500 + 500)
            let conversations = Array(repeating: "[]", count: 100).joined(separator: ",")
            try refusedUpFront(harness, "/v1/chat/completions/batch", #"{"messages":[\#(conversations)],"n":16,"max_tokens":10}"#,
                               expecting: 100 + 100 * 16 * 10)
            try refusedUpFront(harness, "/v1/responses", #"{"input":"x","max_output_tokens":5000}"#, expecting: 5 + 5000)
            try refusedUpFront(harness, "/v1/messages", #"{"messages":[{"role":"user","content":"x"}],"max_tokens":9999}"#, expecting: 5 + 9999)
        }
    }

    @Test("Responses and Messages streams cut short after a few events: charged at least what vLLM generated", arguments: [
        ("/v1/responses", #"{"input":"go on","max_output_tokens":400,"stream":true}"#),
        ("/v1/messages", #"{"messages":[{"role":"user","content":"go on"}],"max_tokens":400,"stream":true}"#),
    ])
    func cutShort(path: String, body: String) async throws {
        // 400 tokens × 50 ms = 20 s: the hang-up after 12 events comes mid-stream however loaded the machine.
        let simulation = SimulatorConfiguration(servedModelName: "qwen", interTokenLatency: .milliseconds(50), outputTokens: 400)
        try await withGateway(simulator: simulation, configure: RouteMeteringTests.allRoutes) { harness in
            let (token, record) = try harness.store.create(name: "quitter")
            try harness.gateway.reload()
            let connection = try TestHTTPConnection(port: harness.port)
            connection.post(path, json: body, headers: ["Authorization": "Bearer \(token.text)"])
            for _ in 0..<12 { _ = try connection.read(through: "\n\n") }
            connection.hangUp()
            #expect(try await eventually(timeout: .seconds(15)) { try harness.gateway.inFlight == 0 && harness.simStat("in_flight") == 0 })
            let generated = try harness.simStat("generated_tokens")
            let charged = try harness.charged(key: record.publicID)
            let aborted = try harness.simStat("aborted")
            #expect(generated >= 5 && aborted == 1, "vLLM was generating, then aborted")
            #expect(charged >= generated + 1, "charged \(charged), generated \(generated)")
            #expect(charged >= 400, "the reservation: every token the cap allows")
        }
    }

    @Test("a compressed audio file is reserved by its size at 16 kbit/s: half an hour of it is refused on a small key")
    func longAudio() async throws {
        try await withGateway(configure: {
            RouteMeteringTests.allRoutes(&$0)
            $0.limits.tokensPerMinute = 10_000
        }) { harness in
            let (type, form) = AudioFixtures.form(file: Array(repeating: 0xAB, count: 3_600_000), fields: [:])
            let response = try request(port: harness.port, "POST", "/v1/audio/transcriptions", body: form, contentType: type, headers: harness.bearer)
            #expect(response.status == 400 && response.body.contains("token_limit_exceeded"), "\(response.body)")
            #expect(response.body.contains("up to \(1800 * AudioRoutes.tokensPerSecond) tokens"))
            #expect(try harness.upstreamRequests() == 0)
        }
    }
}
