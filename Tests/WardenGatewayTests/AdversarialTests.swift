import Foundation
import Testing
import VLLMSim
import WardenConfig
import WardenTestSupport
@testable import WardenGateway

/// A tenant trying to get more than its key allows, against vllm-sim's exact counters: every scenario asserts
/// that what the key was charged is at least what vLLM generated for it.
@Suite("gateway: an abusive tenant gets no more than its key allows")
struct AdversarialTests {
    func lastLine(_ harness: GatewayHarness) throws -> [String: Any] {
        try jsonObject(try #require(harness.accessLog.contents.last))
    }

    func settled(_ harness: GatewayHarness) async throws -> Bool {
        try await eventually(timeout: .seconds(15)) { try harness.gateway.inFlight == 0 && harness.simStat("in_flight") == 0 }
    }

    static let chat16 = #"{"messages":[{"role":"user","content":"hi"}],"n":16,"max_tokens":100,"stream":true}"#

    @Test("chat with n=16 cut short after a few events: charged the reservation, at least all 16 choices generated")
    func manyChoicesCutShort() async throws {
        let simulation = SimulatorConfiguration(servedModelName: "qwen", interTokenLatency: .milliseconds(5), outputTokens: 100)
        try await withGateway(simulator: simulation, configure: { $0.limits.tokensPerMinute = 2000 }) { harness in
            let (token, record) = try harness.store.create(name: "abuser")
            try harness.gateway.reload()
            let connection = try TestHTTPConnection(port: harness.port)
            connection.post("/v1/chat/completions", json: Self.chat16, headers: ["Authorization": "Bearer \(token.text)"])
            for _ in 0..<40 { _ = try connection.read(through: "\n\n") }
            connection.hangUp()
            #expect(try await settled(harness))
            let generated = try harness.simStat("generated_tokens")
            let charged = try harness.charged(key: record.publicID)
            #expect(generated >= 16, "16 choices were generating")
            #expect(charged >= generated, "charged \(charged), generated \(generated)")
            #expect(charged == (try lastLine(harness))["tokens_charged"] as? Int)
            #expect(charged <= 16 * 100 + 20, "an honest disconnect pays one reservation, not more")
        }
    }

    @Test("a thousand token-id prompts with max_tokens 30 on a 2,000/min key: refused up front, nothing reaches vLLM")
    func manyPrompts() async throws {
        try await withGateway(configure: { $0.limits.tokensPerMinute = 2000 }) { (harness: GatewayHarness) async throws in
            let prompts = "[" + Array(repeating: "[1]", count: 1000).joined(separator: ",") + "]"
            let body = #"{"prompt":\#(prompts),"max_tokens":30}"#
            let port = harness.port, bearer = harness.bearer
            let responses = Responses()
            await onThreads(8) { _ in responses.append(try? request(port: port, "POST", "/v1/completions", json: body, headers: bearer)) }
            #expect(responses.all.count == 8)
            for response in responses.all {
                #expect(response.status == 400)
                #expect(response.body.contains("token_limit_exceeded"))
                #expect(response.body.contains("up to 31000 tokens"), "1000 prompts × 30 + 1000 prompt tokens")
                #expect(isOpenAIError(response.body))
            }
            #expect(try harness.upstreamRequests() == 0)
            #expect(try harness.simStat("generated_tokens") == 0)
        }
    }

    @Test("chat without max_tokens gets the configured cap written into the request and reported in a header")
    func injectedCap() async throws {
        let simulation = SimulatorConfiguration(servedModelName: "qwen", outputTokens: 1000)
        try await withGateway(simulator: simulation, configure: { $0.limits.defaultMaxTokens = 50 }) { harness in
            for stream in [false, true] {
                let response = try request(port: harness.port, "POST", "/v1/chat/completions",
                                           json: #"{"messages":[{"role":"user","content":"hi"}],"ignore_eos":true,"stream":\#(stream)}"#,
                                           headers: harness.bearer)
                #expect(response.status == 200)
                #expect(response.headers["x-warden-max-tokens"] == "50")
                let upstreamSaw = try #require(try harness.simStats()["last_request_body"] as? String)
                #expect(upstreamSaw.contains(#""max_tokens":50"#))
            }
            #expect(try harness.simStat("generated_tokens") == 100, "50 per request, not vLLM's context-length default")
            // Completions without max_tokens get vLLM's own default of 16: nothing is injected.
            let completion = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x","ignore_eos":true}"#, headers: harness.bearer)
            #expect(completion.headers["x-warden-max-tokens"] == nil)
            #expect(try harness.simStat("generated_tokens") == 116)
            // An explicit null asks vLLM for the context length: the cap is injected there too.
            let unlimited = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x","max_tokens":null,"ignore_eos":true}"#,
                                        headers: harness.bearer)
            #expect(unlimited.headers["x-warden-max-tokens"] == "50")
            #expect(try harness.simStat("generated_tokens") == 166)
        }
    }

    @Test("a non-streaming request abandoned by its client is charged its reservation, never 0")
    func abandonedNonStreaming() async throws {
        let simulation = SimulatorConfiguration(servedModelName: "qwen", interTokenLatency: .milliseconds(10), outputTokens: 3000)
        try await withGateway(simulator: simulation) { harness in
            let connection = try TestHTTPConnection(port: harness.port)
            connection.post("/v1/completions", json: #"{"prompt":"abcd","max_tokens":3000}"#, headers: harness.bearer)
            // 30 s of generation: the hang-up comes mid-way however long a loaded machine takes to get here.
            #expect(try await eventually { try harness.simStat("in_flight") == 1 })
            connection.hangUp()
            #expect(try await settled(harness))
            #expect(try harness.simStat("aborted") == 1)
            let line = try lastLine(harness)
            #expect(line["decision"] as? String == "client_closed")
            #expect(line["tokens_charged"] as? Int == 3002, "prompt estimate 2 + max_tokens 3000")
            #expect(try harness.simStat("generated_tokens") < 3000)
        }
    }

    @Test("a client that never reads its stream: vLLM is cut off at the write timeout and the reservation charged")
    func neverReads() async throws {
        // 16 choices × 2,000 tokens unpaced: about 5 MB at once, on vllm-sim's own thread.
        let simulation = SimulatorConfiguration(servedModelName: "qwen", outputTokens: 10)
        try await withGateway(simulator: simulation, ownSimulatorThread: true, configure: {
            $0.clientWriteTimeout = .seconds(1)
            $0.limits.tokensPerMinute = 1_000_000
        }) { harness in
            let connection = try TestHTTPConnection(port: harness.port, receiveBuffer: 4096)
            connection.post("/v1/completions", json: #"{"prompt":"x","n":16,"max_tokens":2000,"ignore_eos":true,"stream":true}"#, headers: harness.bearer)
            #expect(try await eventually(timeout: .seconds(30)) { !harness.accessLog.contents.isEmpty })
            let line = try lastLine(harness)
            #expect(line["decision"] as? String == "client_stalled")
            let charged = try #require(line["tokens_charged"] as? Int)
            #expect(charged == 32_001)
            #expect(try await eventually { try harness.simStat("in_flight") == 0 })
            let generated = try harness.simStat("generated_tokens")
            #expect(charged >= generated, "charged \(charged), generated \(generated)")
            #expect(try harness.simStat("aborted") + harness.simStat("completed") == 1)
            _ = connection
        }
    }

    @Test("huge, negative, fractional and mistyped numbers are refused with 400; the gateway stays up", arguments: [
        #"{"prompt":"x","max_tokens":9223372036854775807}"#,
        #"{"prompt":"x","max_tokens":9223372036854775808}"#,
        #"{"prompt":"x","max_tokens":1e400}"#,
        #"{"prompt":"x","max_tokens":-1}"#,
        #"{"prompt":"x","max_tokens":1.5}"#,
        #"{"prompt":"x","max_tokens":"many"}"#,
        #"{"prompt":"x","n":16,"max_tokens":600000000000000000}"#,
        #"{"prompt":"x","n":17}"#,
        #"{"prompt":"x","best_of":10000}"#,
        #"{"prompt":[],"max_tokens":1}"#,
        #"{"prompt":[[]],"max_tokens":1}"#,
        #"{"prompt":"x","stream_options":[]}"#,
    ])
    func hostileNumbers(body: String) async throws {
        try await withGateway { harness in
            let refused = try request(port: harness.port, "POST", "/v1/completions", json: body, headers: harness.bearer)
            #expect(refused.status == 400, "\(refused.body)")
            #expect(isOpenAIError(refused.body))
            #expect(try harness.upstreamRequests() == 0)
            let fine = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x","max_tokens":1}"#, headers: harness.bearer)
            #expect(fine.status == 200)
        }
    }

    @Test("--rpm 3 admits 3 at once, not the default burst of 10")
    func burstCappedAtRate() async throws {
        try await withGateway(configure: { $0.limits.burst = 10 }) { harness in
            let (slow, _) = try harness.store.create(name: "three", requestsPerMinute: 3)
            let (bursty, _) = try harness.store.create(name: "bursty", requestsPerMinute: 3, burst: 5)
            try harness.gateway.reload()
            for (token, admitted) in [(slow, 3), (bursty, 5)] {
                let statuses = try (0..<7).map { _ in
                    try request(port: harness.port, "GET", "/v1/models", headers: ["Authorization": "Bearer \(token.text)"]).status
                }
                #expect(statuses == Array(repeating: 200, count: admitted) + Array(repeating: 429, count: 7 - admitted))
            }
        }
    }

    @Test("in any minute a key's generated tokens stay within its limit plus one reservation, whatever mix of abuse it sends")
    func boundUnderMixedAbuse() async throws {
        let simulation = SimulatorConfiguration(servedModelName: "qwen", interTokenLatency: .milliseconds(2), outputTokens: 200)
        let limit = 3000
        try await withGateway(simulator: simulation, configure: { $0.limits.tokensPerMinute = limit; $0.clientWriteTimeout = .seconds(1) }) { harness in
            let port = harness.port
            let bearer = harness.bearer
            let bodies = [
                #"{"messages":[{"role":"user","content":"hi"}],"n":4,"max_tokens":200,"stream":true,"ignore_eos":true}"#,
                #"{"prompt":["a","b","c"],"max_tokens":150,"stream":true,"ignore_eos":true}"#,
                #"{"prompt":"x","max_tokens":400,"ignore_eos":true}"#,
                #"{"messages":[{"role":"user","content":"hi"}],"ignore_eos":true,"stream":true}"#,
            ]
            let deadline = Date().addingTimeInterval(3)
            await onThreads(12) { client in
                var round = 0
                while Date() < deadline {
                    round += 1
                    let body = bodies[(client + round) % bodies.count]
                    let path = body.contains("messages") ? "/v1/chat/completions" : "/v1/completions"
                    guard let connection = try? TestHTTPConnection(port: port, timeout: 2) else { continue }
                    connection.post(path, json: body, headers: bearer)
                    // Hang up at a different moment each time: at once, after the head, after some events.
                    for _ in 0..<(round % 4) * 3 { _ = try? connection.read(through: "\n\n") }
                    connection.hangUp()
                }
            }
            #expect(try await settled(harness))
            let generated = try harness.simStat("generated_tokens")
            let charged = try harness.accessLog.contents.map { try jsonObject($0) }.reduce(0) { $0 + ($1["tokens_charged"] as? Int ?? 0) }
            let largestReservation = 1024 + 10  // chat without max_tokens: the injected default cap
            #expect(generated <= limit + largestReservation, "generated \(generated) in under a minute on a \(limit)/min key")
            #expect(charged >= generated, "charged \(charged), generated \(generated)")
            #expect(try harness.simStat("prompt_tokens") >= 0)
        }
    }

    @Test("X-Forwarded-For is read across every line, right to left, past trusted proxies only")
    func forwardedForAcrossLines() async throws {
        try await withGateway(configure: { $0.trustedProxies = [IPNetwork("127.0.0.0/8")!] }) { harness in
            let connection = try TestHTTPConnection(port: harness.port)
            connection.send("GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(harness.key)\r\n"
                            + "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 203.0.113.9, 127.0.0.5\r\n\r\n")
            #expect(try connection.readResponse().status == 200)
            #expect(try lastLine(harness)["client"] as? String == "203.0.113.9", "the client cannot choose its identity by a first line")
        }
    }

    @Test("request lines and heads over 32 KiB get 431; HTTP/1.1 without Host gets 400; nothing reaches vLLM")
    func framingEdges() async throws {
        try await withGateway { harness in
            let longLine = try TestHTTPConnection(port: harness.port)
            longLine.send("GET /v1/models?\(String(repeating: "a", count: 40 * 1024)) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(harness.key)\r\n\r\n")
            #expect(try longLine.readResponse().status == 431)
            let noHost = try TestHTTPConnection(port: harness.port)
            noHost.send("GET /v1/models HTTP/1.1\r\nAuthorization: Bearer \(harness.key)\r\n\r\n")
            let refused = try noHost.readResponse()
            #expect(refused.status == 400)
            #expect(refused.body.contains("missing_host"))
            #expect(try harness.upstreamRequests() == 0)
        }
    }

    @Test("Expect: 100-continue is answered once the head passes; a bad key is refused before the body is sent")
    func expectContinue() async throws {
        try await withGateway { harness in
            let body = #"{"prompt":"x","max_tokens":1}"#
            let invited = try TestHTTPConnection(port: harness.port)
            invited.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(harness.key)\r\nContent-Type: application/json\r\n"
                         + "Content-Length: \(body.utf8.count)\r\nExpect: 100-continue\r\n\r\n")
            #expect(try invited.read(through: "\r\n\r\n").hasPrefix("HTTP/1.1 100 Continue"))
            invited.send(body)
            #expect(try invited.readResponse().status == 200)
            let refused = try TestHTTPConnection(port: harness.port)
            refused.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-warden-000000000000-\(String(repeating: "a", count: 64))\r\n"
                         + "Content-Length: \(body.utf8.count)\r\nExpect: 100-continue\r\n\r\n")
            let answer = try refused.readResponse()
            #expect(answer.status == 401)
            #expect(try harness.upstreamRequests() == 1, "only the invited request")
        }
    }

    @Test("connections beyond the per-address cap are closed on accept; the held ones still work, and the slot frees on close")
    func connectionCap() async throws {
        // Loopback is exempt by default (a proxy in front connects from it): the test lifts that to be a client.
        try await withGateway(configure: { $0.maxConnectionsPerAddress = 5; $0.perAddressCapExempt = [] }) { harness in
            let held = try (0..<5).map { _ in try TestHTTPConnection(port: harness.port) }
            #expect(try await eventually { harness.gateway.openConnections == 5 })
            let refused = try TestHTTPConnection(port: harness.port)
            #expect(try refused.readToClose().isEmpty, "closed at once, nothing served")
            held[0].get("/v1/models", headers: harness.bearer)
            #expect(try held[0].readResponse().status == 200)
            held[1].hangUp()
            #expect(try await eventually { harness.gateway.openConnections == 4 })
            #expect(try request(port: harness.port, "GET", "/v1/models", headers: harness.bearer).status == 200)
            #expect(try harness.gateway.metricsText.contains(#"warden_rejections_total{reason="connection_limit_address"}"#))
        }
    }
}

/// Runs `body` on `count` plain threads and waits for all: blocking sockets on the cooperative pool would stall
/// every other test's tasks.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) async {
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
        let group = DispatchGroup()
        for index in 0..<count {
            group.enter()
            Thread.detachNewThread {
                body(index)
                group.leave()
            }
        }
        group.notify(queue: .global()) { done.resume() }
    }
}

/// Responses collected from several threads.
final class Responses: @unchecked Sendable {
    private let lock = NSLock()
    private var collected: [TestHTTPConnection.Response] = []
    func append(_ response: TestHTTPConnection.Response?) {
        guard let response else { return }
        lock.withLock { collected.append(response) }
    }
    var all: [TestHTTPConnection.Response] { lock.withLock { collected } }
}
