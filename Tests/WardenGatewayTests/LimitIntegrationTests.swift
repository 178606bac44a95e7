import Foundation
import Testing
import VLLMSim
import WardenConfig
import WardenTestSupport
@testable import WardenGateway

@Suite("gateway: limits and bans through vllm-sim")
struct LimitIntegrationTests {
    @Test("100 concurrent clients on a 60 rpm key for 10 s are admitted burst + rate × the time they were answered (±1)")
    func requestRateUnderLoad() async throws {
        try await withGateway(configure: { $0.limits.burst = 10 }) { harness in
            let (limited, _) = try harness.store.create(name: "sixty", requestsPerMinute: 60)
            try harness.gateway.reload()
            let port = harness.port
            let bearer = "Bearer \(limited.text)"
            let counts = Counts()
            let started = Date()
            // Plain threads, not the cooperative pool: blocking sockets there would stall every other test's tasks.
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                let group = DispatchGroup()
                for client in 0..<100 {
                    group.enter()
                    Thread.detachNewThread {
                        defer { group.leave() }
                        guard let connection = try? TestHTTPConnection(port: port) else { counts.add(error: true); return }
                        var next = started.addingTimeInterval(Double(client) / 400)
                        while next.timeIntervalSince(started) < 10 {
                            Thread.sleep(until: next)
                            counts.sent(at: Date())
                            connection.post("/v1/completions", json: #"{"prompt":"p","max_tokens":1}"#, headers: ["Authorization": bearer])
                            guard let response = try? connection.readResponse() else { counts.add(error: true); return }
                            counts.answered(at: Date())
                            counts.add(status: response.status, retryAfter: response.headers["retry-after"])
                            next = next.addingTimeInterval(0.25)
                        }
                    }
                }
                group.notify(queue: .global()) { done.resume() }
            }
            let elapsed = Date().timeIntervalSince(started)
            // The key's bucket starts full when its first request arrives (no later than the first answer) and
            // admits one more each second while requests keep arriving (at least until the last send). So: at
            // least burst + rate × (last send − first answer), at most burst + rate × the whole time requests were
            // being answered (± 1 each); a first arrival delayed by a stalled machine moves the lower bound with it.
            // On a quiet machine both are about 20.
            let sending = (counts.lastSent ?? started).timeIntervalSince(counts.firstAnswered ?? started)
            #expect(counts.errors == 0)
            #expect(counts.admitted >= 10 + Int(sending) - 1 && counts.admitted <= 10 + Int(elapsed.rounded(.up)) + 1,
                    "admitted \(counts.admitted) in \(elapsed) s, \(sending) s from the first answer to the last send")
            #expect(counts.rejected > 3000)
            #expect(counts.retryAfterMissing == 0, "every 429 carries Retry-After")
        }
    }

    final class Counts: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var admitted = 0, rejected = 0, errors = 0, retryAfterMissing = 0
        private(set) var firstAnswered: Date?, lastSent: Date?
        func sent(at time: Date) { lock.withLock { lastSent = max(lastSent ?? time, time) } }
        func answered(at time: Date) { lock.withLock { firstAnswered = min(firstAnswered ?? time, time) } }
        func add(status: Int = 0, retryAfter: String? = nil, error: Bool = false) {
            lock.lock()
            defer { lock.unlock() }
            if error { errors += 1 } else if status == 200 { admitted += 1 } else if status == 429 {
                rejected += 1
                if retryAfter == nil { retryAfterMissing += 1 }
            } else { errors += 1 }
        }
    }

    @Test("every response carries the request and token limit headers; a 429 names the limit in OpenAI's shape")
    func headersAndRejection() async throws {
        // 6/min: one request every 10 s, so the third is refused however long a loaded machine takes over the first two.
        try await withGateway(configure: { $0.limits.burst = 2; $0.limits.requestsPerMinute = 6 }) { harness in
            let started = Date()
            let first = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x","max_tokens":1}"#, headers: harness.bearer)
            #expect(first.headers["x-ratelimit-limit-requests"] == "6")
            #expect(first.headers["x-ratelimit-remaining-requests"] == "1")
            #expect(first.headers["x-ratelimit-reset-requests"] == "10s")
            #expect(first.headers["x-ratelimit-limit-tokens"] == "100000000")
            #expect(first.headers["x-ratelimit-remaining-tokens"] != nil)
            #expect(first.headers["x-ratelimit-reset-tokens"] != nil)
            _ = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x","max_tokens":1}"#, headers: harness.bearer)
            let refused = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x","max_tokens":1}"#, headers: harness.bearer)
            let elapsed = Date().timeIntervalSince(started)
            #expect(refused.status == 429)
            // 10 s until the next request at 6/min, less the time between the first request and this one (at most
            // `elapsed`), rounded up.
            let retryAfter = Int(refused.headers["retry-after"] ?? "") ?? -1
            #expect(retryAfter >= Int((10 - elapsed).rounded(.up)) && retryAfter <= 10, "retry-after \(retryAfter) after \(elapsed) s")
            #expect(refused.headers["x-ratelimit-remaining-requests"] == "0")
            #expect(isOpenAIError(refused.body))
            #expect(refused.body.contains("requests: 6 per minute"))
            #expect(try harness.simStats()["requests"] as? [String: Int] == ["POST /v1/completions": 2, "GET /health": 1]
                    || (try harness.simStats()["requests"] as? [String: Int])?["POST /v1/completions"] == 2)
        }
    }

    @Test("a request that does not fit the minute's remaining tokens waits until the first leaves the window; one larger than the whole minute is a 400")
    func tokenLimit() async throws {
        try await withGateway(configure: { $0.limits.tokensPerMinute = 600 }) { harness in
            // ignore_eos makes vLLM generate all 500 tokens, so the reservation settles at about 500 used.
            let started = Date()
            let ok = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x","max_tokens":500,"ignore_eos":true}"#, headers: harness.bearer)
            #expect(ok.status == 200)
            let refused = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x","max_tokens":500}"#, headers: harness.bearer)
            let elapsed = Date().timeIntervalSince(started)
            #expect(refused.status == 429)
            #expect(refused.body.contains("tokens"))
            let wait = try #require(Int(refused.headers["retry-after"] ?? ""))
            // The first request was admitted at most `elapsed` before this refusal.
            #expect(wait >= Int((60 - elapsed).rounded(.up)) && wait <= 61,
                    "the first request's 100 ms slot leaves the window 60.1 s after it; \(wait) s after \(elapsed) s")
            let never = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x","max_tokens":700}"#, headers: harness.bearer)
            #expect(never.status == 400)
            #expect(never.body.contains("token_limit_exceeded"))
            #expect(never.body.contains("limit of 600 tokens per minute by 101"))
        }
    }

    @Test("streams are byte-identical to vLLM's own, with and without client-requested usage")
    func streamsUnchangedByInjection() async throws {
        try await withGateway(simulator: SimulatorConfiguration(servedModelName: "qwen", outputTokens: 6)) { harness in
            let variants = [
                #"{"prompt":"same","stream":true}"#,
                #"{"prompt":"same","stream":true,"stream_options":{"include_usage":true}}"#,
                #"{"prompt":"same","stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}}"#,
                #"{"prompt":"same","stream":true,"stream_options":{"continuous_usage_stats":true}}"#,
                #"{"messages":[{"role":"user","content":"same"}],"stream":true,"n":2}"#,
            ]
            let normalize = { (text: String) in
                text.replacingOccurrences(of: #""id":"(chat)?cmpl-[0-9a-f]+","#, with: "", options: .regularExpression)
                    .replacingOccurrences(of: #""created":[0-9]+,"#, with: "", options: .regularExpression)
            }
            for body in variants {
                let path = body.contains("messages") ? "/v1/chat/completions" : "/v1/completions"
                let viaGateway = try request(port: harness.port, "POST", path, json: body, headers: harness.bearer)
                let upstreamSaw = try #require(try harness.simStats()["last_request_body"] as? String)
                #expect(upstreamSaw.contains(#""include_usage":true"#) || body.contains("stream_options"), "gateway asks vLLM for usage")
                let direct = try request(port: harness.simulatorPort, "POST", path, json: body, headers: ["Authorization": "Bearer \(harness.upstreamKey)"])
                #expect(normalize(viaGateway.body) == normalize(direct.body), "differs for \(body)")
            }
            let lines = harness.accessLog.contents
            #expect(lines.allSatisfy { $0.contains(#""tokens_out":6"#) || $0.contains(#""tokens_out":12"#) }, "usage is known for every stream")
        }
    }

    @Test("a client killed mid-stream is charged its reservation, never less than vLLM generated")
    func abortedStreamCharged() async throws {
        let simulation = SimulatorConfiguration(servedModelName: "qwen", interTokenLatency: .milliseconds(30), outputTokens: 500)
        try await withGateway(simulator: simulation, configure: { $0.limits.tokensPerMinute = 600 }) { harness in
            let connection = try TestHTTPConnection(port: harness.port)
            connection.post("/v1/completions", json: #"{"prompt":"x","stream":true,"max_tokens":550}"#, headers: harness.bearer)
            for _ in 0..<4 { _ = try connection.read(through: "\n\n") }
            connection.hangUp()
            #expect(try await eventually { try harness.simStat("aborted") == 1 && harness.gateway.leasesHeld == 0 })
            let line = try jsonObject(try #require(harness.accessLog.contents.last))
            let charged = try #require(line["tokens_charged"] as? Int)
            #expect(charged == 551, "prompt estimate 1 + max_tokens 550")
            #expect(charged >= (try harness.simStat("generated_tokens")))
            let probe = try request(port: harness.port, "GET", "/v1/models", headers: harness.bearer)
            // A model list generates nothing and reserves no tokens.
            #expect(probe.headers["x-ratelimit-remaining-tokens"] == String(600 - 551))
        }
    }

    @Test("leases are released on completion, refusal, upstream errors, client disconnects and upstream failure")
    func leasesNeverLeak() async throws {
        let simulation = SimulatorConfiguration(servedModelName: "qwen", interTokenLatency: .milliseconds(10), outputTokens: 100)
        try await withGateway(simulator: simulation, configure: { $0.limits.concurrency = 2 }) { harness in
            _ = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x","max_tokens":2}"#, headers: harness.bearer)
            var failing = harness.bearer
            failing["x-sim-fault"] = "fail-percent=100"
            _ = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x"}"#, headers: failing)
            failing["x-sim-fault"] = "close-after=3"
            _ = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x","stream":true}"#, headers: failing)
            // 100 tokens × 300 ms: both streams still run, however loaded the machine, until they are hung up below.
            var slow = harness.bearer
            slow["x-sim-fault"] = "itl-ms=300"
            let first = try TestHTTPConnection(port: harness.port)
            first.post("/v1/completions", json: #"{"prompt":"x","stream":true,"max_tokens":100}"#, headers: slow)
            _ = try first.read(through: "data: ")
            let second = try TestHTTPConnection(port: harness.port)
            second.post("/v1/completions", json: #"{"prompt":"x","stream":true,"max_tokens":100}"#, headers: slow)
            _ = try second.read(through: "data: ")
            #expect(harness.gateway.leasesHeld == 2)
            let third = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x"}"#, headers: harness.bearer)
            #expect(third.status == 429)
            #expect(third.body.contains("concurrency_limit_exceeded"))
            first.hangUp()
            second.hangUp()
            #expect(try await eventually { harness.gateway.leasesHeld == 0 })
            #expect(try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x","max_tokens":1}"#, headers: harness.bearer).status == 200)
            #expect(harness.gateway.leasesHeld == 0)
        }
    }

    @Test("after max_failures bad keys an address is refused even with a valid key, and admitted again when the ban expires")
    func banLifecycle() async throws {
        try await withGateway(configure: {
            // 10 s: long enough that a machine stalled for seconds still checks within the ban, short enough to wait out.
            $0.limits.banPolicy = BanTable.Policy(maxFailures: 3, findTime: .seconds(60), banTime: .seconds(10), ignore: [])
        }) { harness in
            let bad = ["Authorization": "Bearer sk-warden-000000000000-\(String(repeating: "f", count: 64))"]
            for _ in 0..<2 { #expect(try request(port: harness.port, "GET", "/v1/models", headers: bad).status == 401) }
            let started = Date()
            #expect(try request(port: harness.port, "GET", "/v1/models", headers: bad).status == 401)
            let refused = try request(port: harness.port, "GET", "/v1/models", headers: harness.bearer)
            let elapsed = Date().timeIntervalSince(started)
            #expect(refused.status == 403)
            #expect(refused.body.contains("address_banned"))
            // The ban began at most `elapsed` before the refusal: 10 s less that, rounded up.
            let retryAfter = Int(refused.headers["retry-after"] ?? "") ?? -1
            #expect(retryAfter >= Int((10 - elapsed).rounded(.up)) && retryAfter <= 10, "retry-after \(retryAfter) after \(elapsed) s")
            let bans = try jsonObject(try request(port: harness.adminPort, "GET", "/bans").body)["bans"] as? [[String: Any]]
            #expect(bans?.first?["address"] as? String == "127.0.0.1")
            try await Task.sleep(for: .milliseconds(10_100))
            #expect(try request(port: harness.port, "GET", "/v1/models", headers: harness.bearer).status == 200)
            for _ in 0..<3 { _ = try request(port: harness.port, "GET", "/v1/models", headers: bad) }
            #expect(try request(port: harness.port, "GET", "/v1/models", headers: harness.bearer).status == 403, "banned again, for longer")
            #expect(try request(port: harness.adminPort, "DELETE", "/bans/127.0.0.1").status == 200)
            #expect(try request(port: harness.port, "GET", "/v1/models", headers: harness.bearer).status == 200)
            #expect(try harness.gateway.metricsText.contains(#"warden_rejections_total{reason="banned"}"#))
        }
    }
}
