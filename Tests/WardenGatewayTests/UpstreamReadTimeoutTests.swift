import Foundation
import Testing
import WardenTestSupport
@testable import WardenGateway

/// The upstream read timeout, kept by ``UpstreamHandler`` itself: silence from vLLM ends the exchange, and the time a
/// connection spent idle in the pool does not count against the next request sent on it.
@Suite("upstream read timeout")
struct UpstreamReadTimeoutTests {
    static let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"

    @Test("a stream whose model server goes silent after its first event is ended with an error event once the read timeout passes")
    func silentMidStream() async throws {
        let event = #"data: {"id":"c","object":"text_completion","choices":[{"index":0,"text":"a"}]}"# + "\n\n"
        let chunk = String(event.utf8.count, radix: 16) + "\r\n" + event + "\r\n"
        let (upstream, upstreamPort, _) = try await ScriptedUpstream.start { _ in
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n" + chunk
        }
        defer { upstream.close(promise: nil) }
        try await withGateway(configure: {
            $0.upstreamPort = upstreamPort
            $0.upstreamReadTimeout = .seconds(1)
        }) { harness in
            let connection = try TestHTTPConnection(port: harness.port, timeout: 10)
            let started = Date()
            connection.post("/v1/completions", json: #"{"prompt":"p","max_tokens":5,"stream":true}"#, headers: harness.bearer)
            let response = try connection.readResponse()
            #expect(Date().timeIntervalSince(started) >= 0.9, "not before the timeout")
            #expect(response.status == 200)
            #expect(response.body.contains(#""text":"a""#), "the event before the silence was relayed")
            #expect(response.body.contains("read timeout") && response.body.hasSuffix("data: [DONE]\n\n"), "\(response.body)")
            #expect(try await eventually { harness.accessLog.contents.last?.contains("\"decision\":\"upstream_failed_midstream\"") == true })
        }
    }

    @Test("a kept-alive connection reused after idling in the pool times its read from the new request, not from its last answer")
    func idleTimeIsNotCounted() async throws {
        // Read timeout 3 s; every answer comes 1.5 s after its request; the connection idles 2 s between requests.
        // Timed from the first answer, the second request would fail at 3 s after it, 0.5 s before its answer.
        let (upstream, upstreamPort, seen) = try await ScriptedUpstream.start(delay: .milliseconds(1500)) { _ in Self.answer }
        defer { upstream.close(promise: nil) }
        try await withGateway(configure: {
            $0.upstreamPort = upstreamPort
            $0.upstreamReadTimeout = .seconds(3)
        }) { harness in
            let connection = try TestHTTPConnection(port: harness.port, timeout: 10)
            connection.post("/v1/completions", json: #"{"prompt":"p","max_tokens":1}"#, headers: harness.bearer)
            #expect(try connection.readResponse().status == 200)
            usleep(2_000_000)
            connection.post("/v1/completions", json: #"{"prompt":"p","max_tokens":1}"#, headers: harness.bearer)
            let second = try connection.readResponse()
            #expect(second.status == 200, "\(second.body)")
            #expect(seen.connections(carrying: "POST /v1/completions") == 1, "the second request went out on the pooled connection")
        }
    }

    @Test("a stream whose events come every 250 ms runs whole past a 1.5 s read timeout: every read moves the timer")
    func flowingStreamIsNotCut() async throws {
        try await withGateway(configure: { $0.upstreamReadTimeout = .milliseconds(1500) }) { harness in
            var headers = harness.bearer
            headers["x-sim-fault"] = "itl-ms=250, output-tokens=12"
            let connection = try TestHTTPConnection(port: harness.port, timeout: 15)
            connection.post("/v1/completions", json: #"{"prompt":"p","max_tokens":12,"stream":true}"#, headers: headers)
            let response = try connection.readResponse()
            #expect(response.status == 200)
            #expect(!response.body.contains("error") && response.body.hasSuffix("data: [DONE]\n\n"), "\(response.body)")
            #expect(try await eventually { harness.accessLog.contents.last?.contains("\"decision\":\"allowed\"") == true })
        }
    }

    @Test("a connection idle in the pool is closed once the read timeout passes")
    func idlePooledConnectionCloses() async throws {
        let (upstream, upstreamPort, seen) = try await ScriptedUpstream.start { _ in Self.answer }
        defer { upstream.close(promise: nil) }
        try await withGateway(configure: {
            $0.upstreamPort = upstreamPort
            $0.upstreamReadTimeout = .seconds(1)
        }) { harness in
            let response = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"p","max_tokens":1}"#, headers: harness.bearer)
            #expect(response.status == 200)
            #expect(try await eventually(timeout: .seconds(6)) { seen.allClosed(carrying: "POST /v1/completions") },
                    "the gateway closed its idle connection to the upstream")
        }
    }
}
