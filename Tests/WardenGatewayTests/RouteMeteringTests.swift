import Foundation
import Testing
import VLLMSim
import WardenConfig
import WardenTestSupport
@testable import WardenNIOSupport
@testable import WardenGateway

/// Every vLLM route family through the gateway against vllm-sim: the client gets exactly the bytes vLLM sent, and
/// the key is charged vLLM's own count for the route (or, cut short, at least what was generated).
@Suite("gateway: every route metered in its own usage shape")
struct RouteMeteringTests {
    /// Every route Warden has a meter for, plus audio at 50 tokens a second.
    static func allRoutes(_ configuration: inout GatewayConfiguration) {
        configuration.routes.allowedEndpoints = Array(RouteCatalog.meters.keys)
        configuration.routes.metering.audioTokensPerSecond = AudioRoutes.tokensPerSecond
    }

    static let simulation = SimulatorConfiguration(servedModelName: "qwen", outputTokens: 12)

    func lastCharge(_ harness: GatewayHarness) throws -> Int {
        let line = try #require(harness.accessLog.contents.last)
        return try #require(try jsonObject(line)["tokens_charged"] as? Int)
    }

    func settled(_ harness: GatewayHarness) async throws -> Bool {
        try await eventually(timeout: .seconds(15)) { try harness.gateway.inFlight == 0 && harness.simStat("in_flight") == 0 }
    }

    /// Sends `body`, checks the answer is vLLM's byte for byte, and returns it with the charge and the sim's count.
    func exchange(_ harness: GatewayHarness, _ route: String, _ body: String) async throws -> (TestHTTPConnection.Response, charged: Int, sim: Int) {
        let path = String(route.split(separator: " ")[1])
        let response = try request(port: harness.port, "POST", path, json: body, headers: harness.bearer)
        #expect(response.status == 200, "\(route): \(response.body)")
        #expect(try await settled(harness))
        #expect(response.bodyBytes == harness.simulator.lastResponseBody, "\(route): the client gets vLLM's bytes unchanged")
        let counted = try harness.simRoute(route)
        return (response, try lastCharge(harness), counted.prompt + counted.generated)
    }

    @Test("Responses API: JSON and named-event streams pass byte for byte and are charged vLLM's usage exactly")
    func responses() async throws {
        try await withGateway(simulator: Self.simulation, configure: Self.allRoutes) { harness in
            let (json, charged, sim) = try await exchange(harness, "POST /v1/responses", #"{"input":"Say hi","max_output_tokens":40}"#)
            #expect(charged == sim && sim > 12, "charged \(charged), vLLM counted \(sim)")
            #expect(json.body.contains(#""object":"response""#))
            try harness.simulator.resetStats()
            let (stream, streamCharged, streamSim) = try await exchange(harness, "POST /v1/responses",
                                                                       #"{"input":[{"role":"user","content":"Say hi"}],"stream":true}"#)
            #expect(stream.body.hasPrefix("event: response.created\n"))
            #expect(stream.body.contains("event: response.completed\n"))
            #expect(streamCharged == streamSim, "charged \(streamCharged), vLLM counted \(streamSim)")
            let upstreamSaw = try #require(try harness.simStats()["last_request_body"] as? String)
            #expect(upstreamSaw.contains(#""max_output_tokens":"#), "the gateway's cap is written into the field Responses reads")
        }
    }

    /// A tool whose schema holds a `usage` object: vLLM echoes `tools` in the response object, ahead of its own usage.
    static let plantedUsageTool = #"[{"type":"function","name":"f","parameters":{"type":"object","properties":{"usage":{"input_tokens":0,"output_tokens":0}}}}]"#

    @Test("Responses API: a usage object planted in the echoed tools is not the charge, streamed or not; background still pays its reservation")
    func plantedUsage() async throws {
        try await withGateway(simulator: Self.simulation, configure: {
            Self.allRoutes(&$0)
            $0.routes.metering.allowBackgroundResponses = true
        }) { harness in
            let tools = Self.plantedUsageTool
            let (json, charged, sim) = try await exchange(harness, "POST /v1/responses", #"{"input":"Say hi","max_output_tokens":40,"tools":\#(tools)}"#)
            #expect(json.body.contains(#""properties":{"usage":{"input_tokens":0"#), "vllm-sim echoes the tools as vLLM does")
            #expect(charged == sim && sim > 12, "charged \(charged), vLLM counted \(sim)")
            try harness.simulator.resetStats()
            let (stream, streamCharged, streamSim) = try await exchange(harness, "POST /v1/responses",
                                                                       #"{"input":"Say hi","stream":true,"tools":\#(tools)}"#)
            #expect(stream.body.contains(#""properties":{"usage":{"input_tokens":0"#))
            #expect(streamCharged == streamSim && streamSim > 12, "charged \(streamCharged), vLLM counted \(streamSim)")
            let queued = try request(port: harness.port, "POST", "/v1/responses",
                                     json: #"{"input":"x","background":true,"max_output_tokens":300,"tools":\#(tools)}"#, headers: harness.bearer)
            #expect(queued.status == 200 && queued.body.contains(#""usage":null"#))
            #expect(try lastCharge(harness) >= 300, "a queued response is charged its reservation, not the planted zero")
        }
    }

    @Test("Responses API: a stored response is retrieved, cancelled and continued only by the key that created it")
    func responsesBelongToTheirKey() async throws {
        try await withGateway(simulator: Self.simulation, configure: Self.allRoutes) { harness in
            let created = try request(port: harness.port, "POST", "/v1/responses", json: #"{"input":"first"}"#, headers: harness.bearer)
            let id = try #require(try jsonObject(created.body)["id"] as? String)
            let firstTotal = try lastCharge(harness)
            #expect(try request(port: harness.port, "GET", "/v1/responses/\(id)", headers: harness.bearer).status == 200)
            let (other, _) = try harness.store.create(name: "other tenant")
            try harness.gateway.reload()
            let before = try harness.upstreamRequests()
            for (method, path, body) in [("GET", "/v1/responses/\(id)", nil), ("POST", "/v1/responses/\(id)/cancel", ""),
                                         ("POST", "/v1/responses", #"{"input":"more","previous_response_id":"\#(id)"}"#)] {
                let response = try request(port: harness.port, method, path, json: body, headers: ["Authorization": "Bearer \(other.text)"])
                #expect(response.status == 404 && response.body.contains("response_not_found"), "\(method) \(path): \(response.body)")
            }
            #expect(try harness.upstreamRequests() == before, "another key's requests for the response never reach vLLM")
            // The owner continues: the reservation includes the stored context, the charge is vLLM's count.
            try harness.simulator.resetStats()
            let (_, charged, sim) = try await exchange(harness, "POST /v1/responses", #"{"input":"more","previous_response_id":"\#(id)"}"#)
            #expect(charged == sim && charged > firstTotal, "the continuation's prompt holds the first response (\(charged) > \(firstTotal))")
        }
    }

    @Test("Responses API: background is refused unless the operator allows it, and then charged its reservation")
    func background() async throws {
        try await withGateway(simulator: Self.simulation, configure: Self.allRoutes) { harness in
            let refused = try request(port: harness.port, "POST", "/v1/responses", json: #"{"input":"x","background":true}"#, headers: harness.bearer)
            #expect(refused.status == 400 && refused.body.contains("background_not_allowed"))
            #expect(try harness.upstreamRequests() == 0)
        }
        try await withGateway(simulator: Self.simulation, configure: {
            Self.allRoutes(&$0)
            $0.routes.metering.allowBackgroundResponses = true
        }) { harness in
            let queued = try request(port: harness.port, "POST", "/v1/responses",
                                     json: #"{"input":"x","background":true,"max_output_tokens":300}"#, headers: harness.bearer)
            #expect(queued.status == 200 && queued.body.contains(#""status":"queued""#))
            #expect(try lastCharge(harness) >= 300, "work the gateway cannot see is charged in full")
            let id = try #require(try jsonObject(queued.body)["id"] as? String)
            let cancelled = try request(port: harness.port, "POST", "/v1/responses/\(id)/cancel", json: "", headers: harness.bearer)
            #expect(cancelled.status == 200 && cancelled.body.contains(#""status":"cancelled""#))
        }
    }

    @Test("Anthropic Messages: JSON and streams byte for byte, charged message_delta's usage; count_tokens costs no tokens")
    func messages() async throws {
        try await withGateway(simulator: Self.simulation, configure: Self.allRoutes) { harness in
            let body = #"{"model":"qwen","max_tokens":64,"system":"be brief","messages":[{"role":"user","content":"hello"}]"#
            let (_, charged, sim) = try await exchange(harness, "POST /v1/messages", body + "}")
            #expect(charged == sim && sim > 12)
            try harness.simulator.resetStats()
            let (stream, streamCharged, streamSim) = try await exchange(harness, "POST /v1/messages", body + #","stream":true}"#)
            #expect(stream.body.hasPrefix("event: message_start\n") && stream.body.contains("event: message_delta\n"))
            #expect(streamCharged == streamSim)
            let missingCap = try request(port: harness.port, "POST", "/v1/messages", json: #"{"messages":[]}"#, headers: harness.bearer)
            #expect(missingCap.status == 400 && missingCap.body.contains("max_tokens"))
            let counted = try request(port: harness.port, "POST", "/v1/messages/count_tokens", json: #"{"model":"qwen","messages":[{"role":"user","content":"hello"}]}"#,
                                      headers: harness.bearer)
            #expect(counted.status == 200 && counted.body.contains("input_tokens"))
            #expect(try lastCharge(harness) == 0)
        }
    }

    @Test("batch chat: every conversation is reserved and charged; streaming it is vLLM's 400")
    func batchChat() async throws {
        try await withGateway(simulator: Self.simulation, configure: Self.allRoutes) { harness in
            let conversations = Array(repeating: #"[{"role":"user","content":"hello there"}]"#, count: 5).joined(separator: ",")
            let (_, charged, sim) = try await exchange(harness, "POST /v1/chat/completions/batch", #"{"messages":[\#(conversations)],"max_tokens":20}"#)
            #expect(charged == sim && sim >= 5 * 12, "5 conversations generated")
        }
    }

    @Test("embeddings in every encoding_format: JSON usage, the metadata header, and bytes_only at one token per byte")
    func embeddings() async throws {
        try await withGateway(simulator: Self.simulation, configure: Self.allRoutes) { harness in
            for format in ["float", "base64", "bytes"] {
                try harness.simulator.resetStats()
                let (response, charged, sim) = try await exchange(harness, "POST /v1/embeddings",
                                                                   #"{"input":["a fairly long sentence to embed","and another"],"encoding_format":"\#(format)"}"#)
                #expect(charged == sim && sim > 0, "\(format): charged \(charged), vLLM counted \(sim)")
                if format == "bytes" { #expect(response.headers["metadata"]?.contains("usage") == true) }
            }
            let text = "a fairly long sentence to embed"
            let (_, charged, sim) = try await exchange(harness, "POST /v1/embeddings", #"{"input":"\#(text)","encoding_format":"bytes_only"}"#)
            #expect(charged == text.utf8.count + 2, "no usage comes back: the per-byte bound is charged")
            #expect(charged >= sim)
        }
    }

    @Test("rerank, score, classify, pooling and /v2/embed: every document and pair counted, charged vLLM's input usage")
    func pooling() async throws {
        try await withGateway(simulator: Self.simulation, configure: Self.allRoutes) { harness in
            let documents = (0..<20).map { #""document number \#($0) with some text""# }.joined(separator: ",")
            let cases = [
                ("POST /v1/rerank", #"{"query":"a long query that is scored against every single document","documents":[\#(documents)]}"#),
                ("POST /v2/rerank", #"{"query":"q","documents":[{"text":"one"},{"text":"two"}]}"#),
                ("POST /rerank", #"{"query":"q","documents":["x","y","z"]}"#),
                ("POST /v1/score", #"{"text_1":"a query scored against each","text_2":[\#(documents)]}"#),
                ("POST /score", #"{"text_1":["a","b"],"text_2":["c","d"]}"#),
                ("POST /classify", #"{"input":["classify me","and me"]}"#),
                ("POST /pooling", #"{"input":"pool this text"}"#),
                ("POST /v2/embed", #"{"model":"qwen","texts":["cohere","style"],"input_type":"search_document","embedding_types":["float"]}"#),
            ]
            for (route, body) in cases {
                try harness.simulator.resetStats()
                let (_, charged, sim) = try await exchange(harness, route, body)
                #expect(charged == sim && sim > 0, "\(route): charged \(charged), vLLM counted \(sim)")
            }
        }
    }

    @Test("audio transcription and translation: multipart parsed, charged seconds × the configured rate")
    func audio() async throws {
        try await withGateway(simulator: Self.simulation, configure: Self.allRoutes) { harness in
            let wav = AudioFixtures.wave(seconds: 3)
            for route in ["/v1/audio/transcriptions", "/v1/audio/translations"] {
                let (contentType, body) = AudioFixtures.form(file: wav, fields: ["model": "qwen"])
                let response = try request(port: harness.port, "POST", route, body: body, contentType: contentType, headers: harness.bearer)
                #expect(response.status == 200, "\(response.body)")
                #expect(response.bodyBytes == harness.simulator.lastResponseBody)
                #expect(response.body.contains(#""type":"duration","seconds":3"#))
                #expect(try lastCharge(harness) == 3 * AudioRoutes.tokensPerSecond)
                // The form's model is logged (and so counted in the usage ledger under it), as a JSON body's is.
                #expect(try jsonObject(#require(harness.accessLog.contents.last))["model"] as? String == "qwen")
            }
            let broken = try request(port: harness.port, "POST", "/v1/audio/transcriptions", body: Array("not a form".utf8),
                                     contentType: "text/plain", headers: harness.bearer)
            #expect(broken.status == 400 && broken.body.contains("multipart/form-data"))
        }
    }

    @Test("the official openai SDK: responses create/retrieve/continue/stream/cancel, embeddings and audio, each charged vLLM's count")
    func openAISDK() async throws {
        try await withGateway(simulator: Self.simulation, configure: {
            Self.allRoutes(&$0)
            $0.routes.metering.allowBackgroundResponses = true
        }) { harness in
            let result = try await runPythonScript("openai_routes_check.py", ["http://127.0.0.1:\(harness.port)/v1", harness.key, "qwen"])
            #expect(result.status == 0, "\(result.output)")
            #expect(try await settled(harness))
            let lines = try harness.accessLog.contents.map { try jsonObject($0) }
            for route in ["/v1/responses", "/v1/embeddings", "/v1/audio/transcriptions"] {
                let charged = lines.filter { $0["path"] as? String == route }.reduce(0) { $0 + ($1["tokens_charged"] as? Int ?? 0) }
                let counted = try harness.simRoute("POST \(route)")
                let expected = route == "/v1/audio/transcriptions" ? counted.prompt : counted.prompt + counted.generated
                let background = route == "/v1/responses" ? 30 + 6 : 0  // the queued background request: its reservation ("later": 2 + 4 per item)
                #expect(charged == expected + background, "\(route): charged \(charged), vLLM counted \(expected)")
            }
        }
    }

    @Test("forbidden variants of a templated route never reach vLLM", arguments: [
        "/v1/responses/a/b", "/v1/responses/%2e%2e", "/v1/responses/..", "/v1/responses/.", "/v1/responses//x",
        "/v1/responses/resp_1/cancel/x", "/v1/responses/resp%2F1", "/v1/responses/resp_1;x",
    ])
    func forbiddenTemplateVariants(path: String) async throws {
        try await withGateway(simulator: Self.simulation, configure: Self.allRoutes) { harness in
            let response = try request(port: harness.port, "GET", path, headers: harness.bearer)
            #expect([400, 404].contains(response.status), "\(path): \(response.status)")
            #expect(isOpenAIError(response.body))
            #expect(try harness.upstreamRequests() == 0, "\(path) reached vLLM")
        }
    }
}

@Suite("multipart forms and WAV headers: read as a decoder reads them, in time linear in the body")
struct MultipartFormTests {
    @Test("the boundary search finds what a naive search finds, for repetitive boundaries and bodies too")
    func searchMatchesNaive() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let alphabet: [UInt8] = [45, 45, 45, 88, 13, 10]  // mostly dashes: overlapping partial matches
            let bytes = (0..<Int.random(in: 0...60, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            let needle = (0..<Int.random(in: 1...8, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            let start = Int.random(in: 0...max(0, bytes.count), using: &generator)
            let naive = bytes.count < needle.count || start > bytes.count - needle.count ? nil
                : (start...(bytes.count - needle.count)).first { bytes[$0..<$0 + needle.count].elementsEqual(needle) }
            #expect(MultipartForm.find(needle, in: bytes, from: start) == naive, "\(needle) in \(bytes) from \(start)")
        }
    }

    @Test("a 200-byte boundary over 400 KB of dashes is read once (it took 11 s, on an event loop); the form still parses")
    func adversarialBoundary() {
        let boundary = String(repeating: "-", count: 199) + "X"
        #expect(MultipartForm(Array(repeating: UInt8(ascii: "-"), count: 400_000), contentType: "multipart/form-data; boundary=\"\(boundary)\"")?.parts.isEmpty == true)
        let (contentType, body) = AudioFixtures.form(file: AudioFixtures.wave(seconds: 1), fields: ["model": "qwen"])
        let form = MultipartForm(body, contentType: contentType)
        #expect(form?.text("model") == "qwen" && form?["file"]?.count == 44 + 32_000)
    }

    @Test("a WAV's duration is its samples: a byte rate inflated in the header does not shorten it")
    func waveDuration() {
        var wave = AudioFixtures.wave(seconds: 10)
        #expect(WaveDuration.seconds(wave[...]) == 10)
        wave.replaceSubrange(28..<32, with: [0xFF, 0xFF, 0xFF, 0xFF])  // the fmt chunk's byte rate
        #expect(WaveDuration.seconds(wave[...]) == 10, "forged byte rate")
        wave.replaceSubrange(28..<32, with: [1, 0, 0, 0])  // a byte rate claimed lower: the longer reading stands
        #expect(WaveDuration.seconds(wave[...]) == 320_000)
    }
}

/// Audio files and multipart forms for tests.
enum AudioFixtures {
    /// A silent 16 kHz mono 16-bit WAV of `seconds`.
    static func wave(seconds: Int) -> [UInt8] {
        let dataBytes = seconds * 32_000
        func le32(_ value: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        func le16(_ value: Int) -> [UInt8] { (0..<2).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        return Array("RIFF".utf8) + le32(36 + dataBytes) + Array("WAVE".utf8) + Array("fmt ".utf8) + le32(16) + le16(1) + le16(1)
            + le32(16_000) + le32(32_000) + le16(2) + le16(16) + Array("data".utf8) + le32(dataBytes) + Array(repeating: 0, count: dataBytes)
    }

    static func form(file: [UInt8], fields: [String: String]) -> (contentType: String, body: [UInt8]) {
        let boundary = "warden-test-boundary"
        var body: [UInt8] = []
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) {
            body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n".utf8)
        }
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n".utf8)
        body += file + Array("\r\n--\(boundary)--\r\n".utf8)
        return ("multipart/form-data; boundary=\(boundary)", body)
    }
}

@Suite("gateway metrics: refusals labelled with the allow-listed route, templates as written")
struct RouteLabelTests {
    @Test("a refusal on an allowed route counts under that route; a templated path under its template; the rest under other")
    func labels() async throws {
        try await withGateway(configure: RouteMeteringTests.allRoutes) { harness in
            _ = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x"}"#, headers: ["Authorization": "Bearer wrong"])
            _ = try request(port: harness.port, "GET", "/v1/responses/resp_unknown", headers: harness.bearer)
            _ = try request(port: harness.port, "GET", "/v1/not-a-route", headers: harness.bearer)
            let metrics = try request(port: harness.adminPort, "GET", "/metrics").body
            #expect(metrics.contains(#"route="/v1/completions",status="401""#), "\(metrics)")
            #expect(metrics.contains(#"route="/v1/responses/{id}",status="404""#))
            #expect(metrics.contains(#"route="other",status="404""#))
            #expect(!metrics.contains("resp_unknown"), "ids never become label values")
        }
    }
}
