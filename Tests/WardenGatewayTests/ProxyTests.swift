import Foundation
import Testing
import VLLMSim
import WardenConfig
import WardenTestSupport
@testable import WardenGateway

@Suite("gateway: proxying to vllm-sim")
struct ProxyTests {
    @Test("the official openai SDK works through the gateway, streaming and not")
    func openAISDK() async throws {
        try await withGateway(simulator: SimulatorConfiguration(servedModelName: "qwen", outputTokens: 8)) { harness in
            let result = try await runPythonScript("openai_client_check.py", ["http://127.0.0.1:\(harness.port)/v1", harness.key, "qwen"])
            #expect(result.status == 0, "\(result.output)")
            let requests = try harness.simStats()["requests"] as? [String: Int] ?? [:]
            #expect(requests["POST /v1/chat/completions"] == 3)
            #expect(requests["POST /v1/completions"] == 2)
        }
    }

    @Test("vLLM gets its own key, the gateway's request id and only allow-listed client headers; the client's id is echoed")
    func upstreamHeaders() async throws {
        try await withGateway { harness in
            var headers = harness.bearer
            headers["Connection"] = "keep-alive, X-Secret-Hop"
            headers["X-Secret-Hop"] = "1"
            headers["TE"] = "trailers"
            headers["X-Request-Id"] = "req-abc_123"
            headers["X-Forwarded-For"] = "6.6.6.6"
            headers["X-Data-Parallel-Rank"] = "3"
            headers["X-Forwarded-Host"] = "evil.example"
            headers["Accept-Encoding"] = "gzip"
            headers["User-Agent"] = "test-agent"
            let response = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"hi","max_tokens":2}"#, headers: headers)
            #expect(response.status == 200)
            #expect(response.headers["x-request-id"] == "req-abc_123")
            let seen = try #require(try harness.simStats()["last_request_headers"] as? [String: String])
            #expect(seen["authorization"] == "Bearer \(harness.upstreamKey)")
            let gatewayID = try #require(seen["x-request-id"])
            #expect(gatewayID != "req-abc_123" && gatewayID.count == 32, "vLLM uses it as its own id: never the client's")
            #expect(harness.accessLog.contents.last?.contains(#""request_id":"\#(gatewayID)","client_request_id":"req-abc_123""#) == true)
            for name in ["x-data-parallel-rank", "x-forwarded-host", "accept-encoding"] { #expect(seen[name] == nil, "\(name)") }
            #expect(seen["user-agent"] == "test-agent")
            #expect(seen["x-forwarded-for"] == "127.0.0.1", "an untrusted peer's X-Forwarded-For is replaced")
            #expect(seen["x-secret-hop"] == nil)
            #expect(seen["te"] == nil)
            #expect(seen["connection"] == nil)
        }
    }

    @Test("SSE events arrive as vLLM sent them, byte for byte")
    func streamPassthrough() async throws {
        try await withGateway(simulator: SimulatorConfiguration(servedModelName: "qwen", outputTokens: 5)) { harness in
            let body = #"{"prompt":"same","stream":true,"stream_options":{"include_usage":true}}"#
            let viaGateway = try request(port: harness.port, "POST", "/v1/completions", json: body, headers: harness.bearer)
            let direct = try request(port: harness.simulatorPort, "POST", "/v1/completions", json: body, headers: ["Authorization": "Bearer \(harness.upstreamKey)"])
            #expect(viaGateway.headers["content-type"] == "text/event-stream; charset=utf-8")
            let strip = { (text: String) in text.replacingOccurrences(of: #""id":"cmpl-[0-9a-f]+","#, with: "", options: .regularExpression)
                .replacingOccurrences(of: #""created":[0-9]+,"#, with: "", options: .regularExpression) }
            #expect(strip(viaGateway.body) == strip(direct.body))
            #expect(viaGateway.body.hasSuffix("data: [DONE]\n\n"))
        }
    }

    @Test("a client that hangs up mid-stream aborts the generation upstream")
    func abortMidStream() async throws {
        try await withGateway(simulator: SimulatorConfiguration(servedModelName: "qwen", interTokenLatency: .milliseconds(20), outputTokens: 500)) { harness in
            let connection = try TestHTTPConnection(port: harness.port)
            connection.post("/v1/chat/completions", json: #"{"messages":[{"role":"user","content":"x"}],"stream":true}"#, headers: harness.bearer)
            _ = try connection.read(through: #""content":" "#)
            connection.hangUp()
            #expect(try await eventually(timeout: .seconds(10)) { try harness.simStat("aborted") == 1 })
            #expect(try harness.simStat("generated_tokens") < 500)
            #expect(try await eventually { harness.gateway.inFlight == 0 })
        }
    }

    @Test("a streaming client that hangs up during prefill aborts upstream before the first token")
    func abortStreamingPrefill() async throws {
        try await withGateway(simulator: SimulatorConfiguration(servedModelName: "qwen", timeToFirstToken: .seconds(30))) { harness in
            let connection = try TestHTTPConnection(port: harness.port)
            connection.post("/v1/chat/completions", json: #"{"messages":[{"role":"user","content":"x"}],"stream":true}"#, headers: harness.bearer)
            _ = try connection.read(through: "\r\n\r\n")
            connection.hangUp()
            #expect(try await eventually(timeout: .seconds(10)) { try harness.simStat("aborted") == 1 })
            #expect(try harness.simStat("generated_tokens") == 0)
        }
    }

    @Test("a non-streaming client that hangs up during prefill aborts upstream too")
    func abortNonStreamingPrefill() async throws {
        try await withGateway(simulator: SimulatorConfiguration(servedModelName: "qwen", timeToFirstToken: .seconds(30))) { harness in
            let connection = try TestHTTPConnection(port: harness.port)
            connection.post("/v1/chat/completions", json: #"{"messages":[{"role":"user","content":"x"}]}"#, headers: harness.bearer)
            #expect(try await eventually { try harness.simStat("in_flight") == 1 })
            connection.hangUp()
            #expect(try await eventually(timeout: .seconds(10)) { try harness.simStat("aborted") == 1 })
            let line = try #require(harness.accessLog.contents.last)
            #expect(line.contains(#""decision":"client_closed""#))
        }
    }

    @Test("an upstream failure mid-stream ends the stream with an error event and [DONE]")
    func upstreamFailsMidStream() async throws {
        try await withGateway { harness in
            var headers = harness.bearer
            headers["x-sim-fault"] = "close-after=2"
            let response = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x","stream":true}"#, headers: headers)
            let payloads = events(response.body)
            #expect(payloads.count == 4)
            let error = try #require(try jsonObject(payloads[2])["error"] as? [String: Any])
            #expect(error["code"] as? String == "upstream_error")
            #expect(payloads.last == "[DONE]")
        }
    }

    @Test("vLLM 5xx answers become a generic 502 with the request id; vLLM down becomes 503 with Retry-After")
    func upstreamErrors() async throws {
        try await withGateway { harness in
            var headers = harness.bearer
            headers["x-sim-fault"] = "fail-percent=100"
            let failed = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x"}"#, headers: headers)
            #expect(failed.status == 502)
            #expect(isOpenAIError(failed.body))
            #expect(failed.body.contains(failed.headers["x-request-id"] ?? "missing"))
            #expect(!failed.body.contains("Simulated engine failure"), "vLLM's own error text must not leak")
            await harness.simulator.shutdown()
            let down = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x"}"#, headers: harness.bearer)
            #expect(down.status == 503)
            #expect(down.headers["retry-after"] == "5")
            #expect(isOpenAIError(down.body))
        }
    }

    @Test("vLLM refusing the gateway's key becomes a 502 that tells the operator what to fix")
    func upstreamKeyMismatch() async throws {
        try await withGateway(configure: { $0.upstreamKey = "wrong" }) { harness in
            let response = try request(port: harness.port, "GET", "/v1/models", headers: harness.bearer)
            #expect(response.status == 502)
            #expect(response.body.contains("VLLM_API_KEY"))
        }
    }

    @Test("a deployment asking for TLS is refused at start rather than served in clear text")
    func tlsNotSilentlyIgnored() throws {
        var deployment = Deployment(vllm: .init(model: "/models/qwen"))
        deployment.gateway.tls = .init(certificate: "/etc/warden/cert.pem", privateKey: "/etc/warden/key.pem")
        #expect(throws: GatewaySetupError.self) { try GatewayConfiguration(deployment: deployment, deploymentPath: nil, upstreamKey: nil) }
    }

    @Test("keep-alive connections carry several requests, streaming and not")
    func keepAlive() async throws {
        try await withGateway { harness in
            let connection = try TestHTTPConnection(port: harness.port)
            for index in 0..<4 {
                connection.post("/v1/completions", json: #"{"prompt":"k","max_tokens":2,"stream":\#(index % 2 == 0)}"#, headers: harness.bearer)
                #expect(try connection.readResponse().status == 200)
            }
        }
    }

    @Test("the access log has one JSON line per request with key, model, tokens and decision")
    func accessLog() async throws {
        try await withGateway { harness in
            _ = try request(port: harness.port, "POST", "/v1/chat/completions", json: #"{"model":"qwen","messages":[{"role":"user","content":"hi"}],"max_tokens":3}"#,
                            headers: harness.bearer)
            _ = try request(port: harness.port, "POST", "/tokenize", json: "{}", headers: harness.bearer)
            let lines = harness.accessLog.contents
            #expect(lines.count == 2)
            let allowed = try jsonObject(lines[0])
            #expect(allowed["key"] as? String == String(harness.key.dropFirst(10).prefix(12)))
            #expect(allowed["model"] as? String == "qwen")
            #expect(allowed["tokens_out"] as? Int == 3)
            #expect(allowed["status"] as? Int == 200)
            #expect(allowed["decision"] as? String == "allowed")
            #expect(allowed["upstream_status"] as? Int == 200)
            #expect(allowed["ttft_ms"] is Double)
            let refused = try jsonObject(lines[1])
            #expect(refused["decision"] as? String == "rejected:not_allowed")
            #expect(!lines.joined().contains(harness.key), "the secret never reaches the log")
        }
    }

    @Test("the admin listener parses as strictly as the public one: pipelined probes answered in order; smuggling framing refused with 400 and a close")
    func adminParsing() async throws {
        try await withGateway { harness in
            let connection = try TestHTTPConnection(port: harness.adminPort)
            connection.send("GET /healthz HTTP/1.1\r\nHost: a\r\nX-Request-Id: first\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\nX-Request-Id: second\r\n\r\n")
            let first = try connection.readResponse(), second = try connection.readResponse()
            #expect(first.status == 200 && first.headers["x-request-id"] == "first")
            #expect(second.status == 404 && second.headers["x-request-id"] == "second")
            let smuggler = try TestHTTPConnection(port: harness.adminPort)
            smuggler.send("POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n")
            let refused = try smuggler.readToClose()
            #expect(refused.hasPrefix("HTTP/1.1 400 "))
            #expect(refused.components(separatedBy: "HTTP/1.1 ").count == 2, "one answer, then the close")
        }
    }

    @Test("the admin listener serves liveness, readiness and metrics; the public one does not")
    func admin() async throws {
        try await withGateway { harness in
            _ = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x","max_tokens":1}"#, headers: harness.bearer)
            #expect(try request(port: harness.adminPort, "GET", "/healthz").status == 200)
            var ready = false
            for _ in 0..<50 where !ready {
                await harness.gateway.refreshUpstreamHealth()
                ready = (try? request(port: harness.adminPort, "GET", "/readyz").status) == 200
                if !ready { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(ready)
            let metrics = try request(port: harness.adminPort, "GET", "/metrics").body
            let keyID = String(harness.key.dropFirst(10).prefix(12))
            #expect(metrics.contains(#"warden_requests_total{route="/v1/completions",status="200",key="\#(keyID)"} 1"#))
            #expect(metrics.contains("warden_gateway_overhead_seconds_bucket"))
            #expect(metrics.contains("warden_time_to_first_token_seconds_bucket"))
            #expect(!metrics.contains(harness.key))
            #expect(try request(port: harness.port, "GET", "/metrics", headers: harness.bearer).status == 404)
            await harness.simulator.shutdown()
            // Two failed probes in a row turn it (`UpstreamReadinessTests`; a background probe may add a third).
            await harness.gateway.refreshUpstreamHealth()
            await harness.gateway.refreshUpstreamHealth()
            #expect(try request(port: harness.adminPort, "GET", "/readyz").status == 503)
        }
    }
}

