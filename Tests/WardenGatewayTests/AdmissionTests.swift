import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import WardenConfig
import WardenJSON
@testable import WardenGateway

/// Admission without sockets: the reservation arithmetic, the limits on an injected clock, and random input.
@Suite("admission: reservations, limits on a manual clock, and hostile bodies")
struct AdmissionTests {
    func budget(_ body: String, path: String = "/v1/completions", defaultCap: Int = 1024) throws -> TokenBudget {
        let meter = RouteCatalog.meters["POST \(path)"]!
        return try InferenceRequest.parse(Array(body.utf8), meter: meter, servedModel: "qwen", defaultMaxTokens: defaultCap).budget
    }

    @Test("prompt-bearing fields: exactly vLLM's, by name (same-length near misses are not)")
    func promptFields() {
        let prompt = ["messages", "prompt", "input", "content", "text", "query", "documents", "instructions", "system",
                      "text_1", "text_2", "queries", "texts", "inputs", "data_1", "data_2",
                      "tool_calls", "function", "arguments", "reasoning", "reasoning_content", "output"]
        for name in prompt { #expect(InferenceRequest.isPromptField(name), "\(name)") }
        for name in ["model", "tex", "textx", "prompts", "Content", "data_3", "instruction", "documentz", "messagez", "", "max_tokens"] {
            #expect(!InferenceRequest.isPromptField(name), "\(name)")
        }
        let body = try! JSONValue.parse(Array(#"{"model":"m","model":"n","max_tokens":2,"prompt":"abcd"}"#.utf8))
        #expect(body["model"]?.stringValue == "n" && body["max_tokens"]?.intValue == 2 && body["max_token"] == nil)
    }

    @Test("reservations bound what vLLM may generate: prompts × choices × the cap vLLM would apply")
    func reservations() throws {
        let chat = "/v1/chat/completions"
        #expect(try budget(#"{"messages":[],"max_tokens":50,"max_completion_tokens":4}"#, path: chat).completionCap == 4)
        #expect(try budget(#"{"messages":[],"max_completion_tokens":null,"max_tokens":7}"#, path: chat).completionCap == 7)
        #expect(try budget(#"{"messages":[],"n":3}"#, path: chat, defaultCap: 100) == TokenBudget(promptTokens: 1, sequences: 3, cap: .unset, defaultCap: 100))
        #expect(try budget(#"{"messages":[],"n":3}"#, path: chat, defaultCap: 100).injectedCap == 100)
        // Completions read max_tokens only; vLLM's default there is 16, and nothing is injected.
        #expect(try budget(#"{"prompt":"x","max_completion_tokens":500}"#).completionCap == 16)
        #expect(try budget(#"{"prompt":"x"}"#).injectedCap == nil)
        #expect(try budget(#"{"prompt":"x","max_tokens":null}"#).injectedCap == 1024)
        let prompts = try budget(#"{"prompt":[[1,2,3],[4],"abcdefgh"],"max_tokens":10,"n":2,"best_of":5}"#)
        #expect(prompts.sequences == 15, "3 prompts × best_of 5")
        #expect(prompts.promptTokens == 3 + 1 + 3, "token ids exactly; text by bytes / 4 + 1")
        #expect(prompts.worstCase == 7 + 150)
        #expect(try budget(#"{"prompt":[1,2,3,4,5],"max_tokens":2}"#).sequences == 1, "one prompt of token ids")
        #expect(try budget(#"{"input":["a","b"]}"#, path: "/v1/embeddings").completionTokens == 0)
        #expect(try budget(#"{"prompt":"x","max_tokens":9223372036854775807,"n":16}"#).worstCase == Int.max, "saturates, never traps")
    }

    @Test("each route family reserves what vLLM would run: conversations, documents × query, output caps")
    func routeReservations() throws {
        let batch = try budget(#"{"messages":[[{"role":"user","content":"hi"}],[{"role":"user","content":"yo"}],[]],"max_tokens":10,"n":2}"#,
                               path: "/v1/chat/completions/batch")
        #expect(batch.sequences == 6 && batch.completionCap == 10, "3 conversations × n 2")
        let responses = try budget(#"{"input":"hello","max_output_tokens":70}"#, path: "/v1/responses")
        #expect(responses.sequences == 1 && responses.completionCap == 70)
        #expect(try budget(#"{"input":"hello"}"#, path: "/v1/responses", defaultCap: 33).injectedCap == 33)
        #expect(throws: GatewayError.self) { try budget(#"{"max_output_tokens":5}"#, path: "/v1/responses") }
        let messages = try budget(#"{"system":"s","messages":[{"role":"user","content":"hi"}],"max_tokens":64}"#, path: "/v1/messages")
        #expect(messages.completionCap == 64 && messages.injectedCap == nil)
        #expect(throws: GatewayError.self) { try budget(#"{"messages":[]}"#, path: "/v1/messages") }
        let query = String(repeating: "q", count: 400)  // 101 tokens at 4 bytes a token
        let rerank = try budget(#"{"query":"\#(query)","documents":["a","b","c","d","e"]}"#, path: "/v1/rerank")
        #expect(rerank.promptTokens == 101 * 5 + 5, "the query counts once per document")
        #expect(rerank.completionTokens == 0)
        let score = try budget(#"{"text_1":["a","b"],"text_2":["c","d"]}"#, path: "/v1/score")
        #expect(score.promptTokens == 4, "paired lists count each text once")
        #expect(try budget(#"{"input":[1,2,3,4,5,6,7]}"#, path: "/v1/embeddings").promptTokens == 7, "token ids count exactly")
        #expect(throws: GatewayError.self) { try budget(#"{"documents":["a"]}"#, path: "/v1/rerank") }
    }

    @Test("what chat templates render besides content is reserved too: tool-call arguments, reasoning, chat_template_kwargs; media parts at an image's cost")
    func hiddenPrompt() throws {
        let chat = "/v1/chat/completions"
        let long = String(repeating: "x", count: 4000)
        let plain = try budget(#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":1}"#, path: chat).promptTokens
        for body in [#"{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"\#(long)"}}]}],"max_tokens":1}"#,
                     #"{"messages":[{"role":"assistant","content":"","reasoning_content":"\#(long)"}],"max_tokens":1}"#,
                     #"{"messages":[{"role":"user","content":"hi"}],"chat_template_kwargs":{"documents":[{"text":"\#(long)"}]},"max_tokens":1}"#] {
            #expect(try budget(body, path: chat).promptTokens >= plain + 1000, "\(body.prefix(80))")
        }
        let image = #"{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}"#
        let withImages = #"{"messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},\#(image),\#(image)]}],"max_tokens":1}"#
        #expect(try budget(withImages, path: chat).promptTokens >= 2 * InferenceRequest.mediaPartTokens, "two images, each an image's cost")
        let bounded = try InferenceRequest.parse(Array(withImages.utf8), meter: RouteCatalog.meters["POST \(chat)"]!, servedModel: "qwen",
                                                 defaultMaxTokens: 16, contextLength: 8192).budget.promptTokens
        #expect(bounded <= 8192 + 100, "never more than the model's context for the media")
        let tools = #"{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"image_url":{"type":"string"},"images":{"type":"array"}}}}}],"max_tokens":1}"#
        #expect(try budget(tools, path: chat).promptTokens < 200, "a tool's property named image_url is no image")
        let anthropic = #"{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}],"max_tokens":5}"#
        #expect(try budget(anthropic, path: "/v1/messages").promptTokens >= InferenceRequest.mediaPartTokens)
        let responses = #"{"input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/png;base64,AAAA"}]}],"max_output_tokens":5}"#
        #expect(try budget(responses, path: "/v1/responses").promptTokens >= InferenceRequest.mediaPartTokens)
        #expect(try budget(#"{"model":"m","images":["data:a","data:b","data:c"],"input_type":"image"}"#, path: "/v2/embed").promptTokens
                >= 3 * InferenceRequest.mediaPartTokens)
    }

    @Test("pooling with padding: max_length reserves every input at the model's full length, and is refused when that length is unknown")
    func paddedPooling() throws {
        func padded(_ body: String, path: String, contextLength: Int?) throws -> Int {
            try InferenceRequest.parse(Array(body.utf8), meter: RouteCatalog.meters["POST \(path)"]!, servedModel: "qwen",
                                       defaultMaxTokens: 16, contextLength: contextLength).budget.promptTokens
        }
        let thousand = "[" + Array(repeating: #""a""#, count: 1000).joined(separator: ",") + "]"
        #expect(try padded(#"{"input":\#(thousand)}"#, path: "/v1/embeddings", contextLength: 8192) == 1000, "no padding: the text's estimate")
        #expect(try padded(#"{"input":\#(thousand),"padding":"max_length","encoding_format":"bytes_only"}"#, path: "/v1/embeddings",
                           contextLength: 8192) == 8_192_000)
        #expect(try padded(#"{"input":"one","padding":"do_not_pad"}"#, path: "/v1/embeddings", contextLength: 512) == 1)
        #expect(try padded(#"{"query":"q","documents":["x","y","z"],"padding":"max_length"}"#, path: "/v1/rerank", contextLength: 512) == 6 * 512)
        #expect(throws: GatewayError.self, "the length is unknown: refused, not reserved as text") {
            try padded(#"{"input":"one","padding":"max_length"}"#, path: "/v1/embeddings", contextLength: nil)
        }
    }

    @Test("audio: WAV length read from its header, other files bounded by size at 16 kbit/s, forms without a file refused")
    func audioSeconds() throws {
        #expect(AudioRequest.seconds(of: ArraySlice(AudioFixtures.wave(seconds: 4))) == 4)
        #expect(AudioRequest.seconds(of: ArraySlice(Array(repeating: 0xFF, count: 10_001))) == 6)
        var lying = AudioFixtures.wave(seconds: 1)
        lying.replaceSubrange(40..<44, with: [0xFF, 0xFF, 0xFF, 0x7F])  // claims 2 GB of data
        #expect(AudioRequest.seconds(of: ArraySlice(lying)) == 1, "the bytes present bound what the header claims")
        let (type, form) = AudioFixtures.form(file: AudioFixtures.wave(seconds: 2), fields: ["model": "whisper"])
        let parsed = try AudioRequest.parse(form, contentType: type)
        #expect(parsed == AudioRequest(model: "whisper", seconds: 2))
        #expect(throws: GatewayError.self) { try AudioRequest.parse(Array("--b\r\n\r\n--b--".utf8), contentType: "multipart/form-data; boundary=b") }
        #expect(throws: GatewayError.self) { try AudioRequest.parse(form, contentType: "application/json") }
        // Ambiguous audio: two `file` parts (vLLM's form parser keeps the last), or a WAV with two format chunks.
        let (_, long) = AudioFixtures.form(file: AudioFixtures.wave(seconds: 120), fields: [:])
        let twoFiles = Array(form.dropLast("--warden-test-boundary--\r\n".utf8.count)) + long
        #expect(throws: GatewayError.self, "a short first file must not reserve for a long second one") {
            try AudioRequest.parse(twoFiles, contentType: type)
        }
        // A list field repeats, as the SDKs send `timestamp_granularities[]`: accepted.
        let listField = "--warden-test-boundary\r\nContent-Disposition: form-data; name=\"timestamp_granularities[]\"\r\n\r\nword\r\n"
        let granularities = Array((listField + listField.replacingOccurrences(of: "word", with: "segment")).utf8) + form
        #expect(try AudioRequest.parse(granularities, contentType: type).seconds == 2)
        var twoFormats = AudioFixtures.wave(seconds: 2)
        var fast = Array(twoFormats[12..<36])
        fast.replaceSubrange(12..<20, with: [0, 0, 0, 0x10, 0, 0, 0, 0x10])  // sample and byte rates of 268 million a second
        twoFormats.insert(contentsOf: fast, at: 36)  // after the real format chunk, before the data: decoders read the first
        #expect(AudioRequest.seconds(of: ArraySlice(twoFormats)) == (twoFormats.count + 1_999) / 2_000, "untrusted: bounded by its size")
    }

    /// A manual clock for the limits.
    final class ManualClock: Sendable {
        private let time = Mutex(Duration.zero)
        var now: Duration { time.withLock { $0 } }
        func advance(_ by: Duration) { time.withLock { $0 += by } }
    }

    func context(limits: GatewayLimits, table: KeyTable) throws -> Admission.Context {
        var deployment = Deployment(vllm: .init(model: "/models/qwen", servedModelName: "qwen"))
        deployment.gateway.allowedEndpoints = Array(RouteCatalog.meters.keys)
        deployment.gateway.audioTokensPerSecond = 50
        let configuration = try GatewayConfiguration(deployment: deployment, deploymentPath: nil, upstreamKey: "k")
        return Admission.Context(shared: Admission.Shared(configuration: configuration, limits: limits, responses: ResponseRegistry()),
                                 policy: GatewayPolicy(keys: table, gateway: configuration.routes), draining: false,
                                 peer: IPAddress("192.0.2.7"), epochSeconds: 1_800_000_000)
    }

    func withKey(tokensPerMinute: Int? = 1000, _ body: (KeyTable, String) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("admission-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try KeyStore(path: directory.appendingPathComponent("keys.sqlite").path, create: true)
        let (token, _) = try store.create(name: "t", tokensPerMinute: tokensPerMinute, now: 1_700_000_000)
        try body(try store.loadTable(), token.text)
    }

    func head(_ key: String, path: String = "/v1/completions") -> ClientHead {
        .request(.POST, path, fields: [("Host", "gw"), ("Authorization", "Bearer \(key)")])
    }

    @Test("the token window on a manual clock: refused until the first reservation leaves, then admitted to the second")
    func limitsOnManualClock() throws {
        try withKey { table, key in
            let clock = ManualClock()
            var defaults = GatewayLimits.Defaults(Deployment.Gateway(upstream: "http://127.0.0.1:8000"))
            defaults.requestsPerMinute = 1000
            defaults.burst = 1000
            let limits = GatewayLimits(defaults, clock: { clock.now })
            let context = try context(limits: limits, table: table)
            func decide(_ body: String) -> Admission.Decision {
                let identity = Admission.identify(head(key), context: context)
                return Admission.decide(head(key), body: ByteBuffer(string: body), bodyViolation: nil, identity: identity, context: context)
            }
            guard case .forward(let first) = decide(#"{"prompt":"x","max_tokens":600}"#) else { Issue.record("first refused"); return }
            #expect(first.admission.reservedTokens == 601)
            limits.finish(first.admission, charged: 601)  // it ends; a running request would stay counted
            clock.advance(.seconds(59))
            guard case .reject(let refused) = decide(#"{"prompt":"x","max_tokens":600}"#) else { Issue.record("admitted into debt"); return }
            #expect(refused.error.status == .tooManyRequests)
            // The first reservation's 100 ms slot leaves the window at 60.1 s: 1.1 s from now, rounded up.
            #expect(refused.error.headers.contains { $0 == ("Retry-After", "2") })
            clock.advance(.milliseconds(1100))
            guard case .forward = decide(#"{"prompt":"x","max_tokens":600}"#) else { Issue.record("not admitted after the window"); return }
            guard case .reject(let tooLarge) = decide(#"{"prompt":"x","max_tokens":5000}"#) else { Issue.record("oversized admitted"); return }
            #expect(tooLarge.error.status == .badRequest)
            #expect(tooLarge.error.code == "token_limit_exceeded")
        }
    }

    @Test("random bodies and numbers never trap; every refusal is OpenAI-shaped; every forwarded body is a JSON object")
    func fuzz() throws {
        try withKey(tokensPerMinute: nil) { table, key in
            var generator = SplitMix(seed: 2026)
            var defaults = GatewayLimits.Defaults(Deployment.Gateway(upstream: "http://127.0.0.1:8000"))
            defaults.requestsPerMinute = 1_000_000
            defaults.burst = 1_000_000
            let limits = GatewayLimits(defaults, clock: { .zero })
            let context = try context(limits: limits, table: table)
            let numbers = ["0", "-1", "1", "16", "17", "1.5", "1e3", "1e400", "-1e400", "9223372036854775807", "9223372036854775808",
                           "-9223372036854775808", "600000000000000000", "0.0", "1E-7", "340282366920938463463374607431768211456"]
            let fields = ["model", "prompt", "messages", "n", "best_of", "max_tokens", "max_completion_tokens", "stream", "stream_options",
                          "input", "tools", "include_usage", "content", "role", "query", "documents", "text_1", "text_2", "texts",
                          "max_output_tokens", "background", "previous_response_id", "system", "encoding_format", "instructions"]
            func value(_ depth: Int) -> String {
                switch generator.next() % (depth > 2 ? 4 : 7) {
                case 0: return numbers[Int(generator.next() % UInt64(numbers.count))]
                case 1: return ["\"x\"", "\"\"", "\"qwen\"", "\"\\u0000\"", "\"🦀\""][Int(generator.next() % 5)]
                case 2: return ["true", "false", "null"][Int(generator.next() % 3)]
                case 3: return "[]"
                case 4: return "[" + (0..<Int(generator.next() % 4)).map { _ in value(depth + 1) }.joined(separator: ",") + "]"
                default: return object(depth + 1)
                }
            }
            func object(_ depth: Int) -> String {
                "{" + (0..<Int(generator.next() % 5)).map { _ in "\"\(fields[Int(generator.next() % UInt64(fields.count))])\":\(value(depth))" }
                    .joined(separator: ",") + "}"
            }
            var outcomes = (forwarded: 0, refused: 0)
            for round in 0..<3000 {
                let paths = ["/v1/completions": #""prompt":"x""#, "/v1/chat/completions": #""messages":[]"#, "/v1/embeddings": #""input":"x""#,
                             "/v1/responses": #""input":"x""#, "/v1/messages": #""messages":[],"max_tokens":5"#,
                             "/v1/chat/completions/batch": #""messages":[[]]"#, "/v1/rerank": #""query":"q","documents":["d"]"#,
                             "/v1/score": #""text_1":"a","text_2":"b""#, "/v2/embed": #""texts":["t"]"#, "/v1/audio/transcriptions": ""]
                    .sorted { $0.key < $1.key }
                let (path, required) = paths[round % paths.count]
                // Half the bodies start from the route's required fields, so the rest of each is exercised too.
                var body = object(0)
                if round % 2 == 0, !required.isEmpty { body = "{" + required + (body == "{}" ? "}" : "," + body.dropFirst()) }
                if round % 10 == 0 { body = String(body.dropLast(Int(generator.next() % 3))) }  // truncated JSON
                let identity = Admission.identify(head(key, path: path), context: context)
                switch Admission.decide(head(key, path: path), body: ByteBuffer(string: body), bodyViolation: nil, identity: identity, context: context) {
                case .reject(let rejection):
                    outcomes.refused += 1
                    #expect((400..<500).contains(Int(rejection.error.status.code)), "\(body)")
                    #expect(isOpenAIError(rejection.error.body), "\(body) → \(rejection.error.body)")
                case .forward(let forward):
                    outcomes.forwarded += 1
                    #expect(forward.admission.reservedTokens >= 0)
                    let parsed = try? JSONValue.parse(forward.body.readableBytesView)
                    #expect(parsed?.objectValue != nil, "\(body)")
                    limits.finish(forward.admission, charged: 0)
                }
            }
            #expect(outcomes.forwarded > 300 && outcomes.refused > 300, "\(outcomes)")
        }
    }
}
