import Foundation
import Testing
import WardenTestSupport
@testable import WardenGateway

/// Every request here must be answered by the gateway itself: the simulator behind it must see nothing.
@Suite("gateway: bypass corpus — nothing reaches vLLM")
struct BypassCorpusTests {
    struct Case: CustomStringConvertible, Sendable {
        var name: String
        var raw: @Sendable (String) -> String
        var status: Int
        var description: String { name }
    }

    static func post(_ target: String, body: String = #"{"messages":[{"role":"user","content":"hi"}]}"#, extra: String = "") -> @Sendable (String) -> String {
        { key in "POST \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(key)\r\nContent-Type: application/json\r\n\(extra)Content-Length: \(body.utf8.count)\r\n\r\n\(body)" }
    }

    static func get(_ target: String, extra: String = "") -> @Sendable (String) -> String {
        { key in "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(key)\r\n\(extra)\r\n" }
    }

    static let cases: [Case] = [
        // vLLM routes that --api-key leaves open or that control the server.
        Case(name: "POST /invocations", raw: post("/invocations"), status: 404),
        Case(name: "POST /tokenize", raw: post("/tokenize", body: #"{"prompt":"x"}"#), status: 404),
        Case(name: "POST /detokenize", raw: post("/detokenize", body: #"{"tokens":[1]}"#), status: 404),
        Case(name: "POST /pause", raw: post("/pause", body: "{}"), status: 404),
        Case(name: "POST /collective_rpc", raw: post("/collective_rpc", body: "{}"), status: 404),
        Case(name: "POST /v1/load_lora_adapter", raw: post("/v1/load_lora_adapter", body: "{}"), status: 404),
        Case(name: "POST /scale_elastic_ep", raw: post("/scale_elastic_ep", body: "{}"), status: 404),
        Case(name: "POST /pooling", raw: post("/pooling", body: "{}"), status: 404),
        Case(name: "GET /metrics", raw: get("/metrics"), status: 404),
        // GET /health is answered by the gateway itself (PublicHealthTests); its other methods and vLLM's /version are not.
        Case(name: "POST /health", raw: post("/health", body: "{}"), status: 404),
        Case(name: "GET /version", raw: get("/version"), status: 404),
        Case(name: "GET /docs", raw: get("/docs"), status: 404),
        // Allowed paths reached by the wrong method, case or shape.
        Case(name: "GET on a POST endpoint", raw: get("/v1/chat/completions"), status: 404),
        Case(name: "upper-case path", raw: post("/V1/CHAT/COMPLETIONS"), status: 404),
        Case(name: "trailing slash", raw: post("/v1/chat/completions/"), status: 404),
        // Ambiguous targets.
        Case(name: "double slash", raw: post("//v1/chat/completions"), status: 400),
        Case(name: "inner double slash", raw: post("/v1//chat/completions"), status: 400),
        Case(name: "encoded letter", raw: post("/v1/%63hat/completions"), status: 400),
        Case(name: "encoded slash", raw: post("/v1/chat%2Fcompletions"), status: 400),
        Case(name: "encoded dot segment", raw: post("/v1/%2e%2e/tokenize"), status: 400),
        Case(name: "dot segment", raw: post("/v1/./chat/completions"), status: 400),
        Case(name: "dot-dot segment", raw: post("/v1/../tokenize"), status: 400),
        Case(name: "path parameter", raw: post("/v1/chat/completions;x=1"), status: 400),
        Case(name: "backslash", raw: post("/v1\\chat/completions"), status: 400),
        Case(name: "absolute-form target", raw: post("http://127.0.0.1/v1/chat/completions"), status: 400),
        Case(name: "absolute-form with another host", raw: post("http://evil.example/v1/chat/completions"), status: 400),
        Case(name: "asterisk target", raw: post("*"), status: 400),
        Case(name: "two Host headers", raw: post("/v1/chat/completions", extra: "Host: other\r\n"), status: 400),
        // Credentials.
        Case(name: "no key", raw: { _ in "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}" }, status: 401),
        Case(name: "vLLM's own key", raw: { _ in "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-not-warden\r\n\r\n" }, status: 401),
        Case(name: "unknown warden key", raw: { _ in "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-warden-000000000000-\(String(repeating: "0", count: 64))\r\n\r\n" }, status: 401),
        Case(name: "basic scheme", raw: { key in "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \(key)\r\n\r\n" }, status: 401),
        // Bodies.
        Case(name: "malformed JSON", raw: post("/v1/chat/completions", body: #"{"messages":[}"#), status: 400),
        Case(name: "JSON array body", raw: post("/v1/chat/completions", body: "[]"), status: 400),
        Case(name: "model of the wrong type", raw: post("/v1/chat/completions", body: #"{"model":5,"messages":[]}"#), status: 400),
        Case(name: "stream of the wrong type", raw: post("/v1/chat/completions", body: #"{"stream":"yes","messages":[]}"#), status: 400),
        Case(name: "max_tokens of the wrong type", raw: post("/v1/chat/completions", body: #"{"max_tokens":"9","messages":[]}"#), status: 400),
        Case(name: "messages not a list", raw: post("/v1/chat/completions", body: #"{"messages":{}}"#), status: 400),
        Case(name: "n fan-out", raw: post("/v1/chat/completions", body: #"{"n":1000,"messages":[]}"#), status: 400),
        Case(name: "missing prompt", raw: post("/v1/completions", body: "{}"), status: 400),
        Case(name: "body over the cap", raw: post("/v1/chat/completions", body: "{\"messages\":[],\"x\":\"\(String(repeating: "a", count: 5 << 20))\"}"), status: 413),
        // Framing.
        Case(name: "Content-Length with Transfer-Encoding", raw: { key in
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" }, status: 400),
        Case(name: "conflicting Content-Length", raw: { key in
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}" }, status: 400),
        Case(name: "repeated equal Content-Length", raw: { key in
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}" }, status: 400),
        Case(name: "a transfer coding besides chunked", raw: { key in
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" }, status: 400),
        Case(name: "chunked from an HTTP/1.0 client", raw: { key in
            "POST /v1/chat/completions HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" }, status: 400),
        Case(name: "obs-fold", raw: { key in
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n{}" }, status: 400),
        Case(name: "bare LF line ends", raw: { key in "GET /v1/models HTTP/1.1\nHost: x\nAuthorization: Bearer \(key)\n\n" }, status: 400),
        Case(name: "chunk size with 0x", raw: { key in
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n" }, status: 400),
        Case(name: "chunk size overflowing", raw: { key in
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000002\r\n{}\r\n0\r\n\r\n" }, status: 400),
        Case(name: "too many header fields", raw: get("/v1/models", extra: (0..<150).map { "X-H\($0): v\r\n" }.joined()), status: 431),
        Case(name: "a header over the parser's limit", raw: get("/v1/models", extra: "X-Big: \(String(repeating: "b", count: 100_000))\r\n"), status: 431),
        Case(name: "non-ASCII target", raw: post("/v1/chät/completions"), status: 400),
    ]

    @Test("each case is refused with its status and an OpenAI-shaped error, and vLLM sees nothing", arguments: cases)
    func refused(_ testCase: Case) async throws {
        try await withGateway { harness in
            let connection = try TestHTTPConnection(port: harness.port)
            connection.send(testCase.raw(harness.key))
            let response = try connection.readResponse()
            #expect(response.status == testCase.status, "\(testCase.name): \(response.body)")
            #expect(isOpenAIError(response.body), "\(testCase.name): \(response.body)")
            #expect(response.headers["x-request-id"] != nil)
            #expect(try harness.upstreamRequests() == 0, "\(testCase.name) reached the upstream")
        }
    }

    @Test("a key limited to other models gets 403 and a filtered /v1/models")
    func modelRestriction() async throws {
        try await withGateway { harness in
            let (limited, _) = try harness.store.create(name: "limited", models: ["other-model"])
            try harness.gateway.reload()
            let refused = try request(port: harness.port, "POST", "/v1/chat/completions", json: #"{"model":"qwen","messages":[]}"#,
                                      headers: ["Authorization": "Bearer \(limited.text)"])
            #expect(refused.status == 403)
            #expect(isOpenAIError(refused.body))
            #expect(try harness.upstreamRequests() == 0)
            let models = try request(port: harness.port, "GET", "/v1/models", headers: ["Authorization": "Bearer \(limited.text)"])
            #expect(models.status == 200)
            #expect((try jsonObject(models.body)["data"] as? [Any])?.isEmpty == true)
            let full = try request(port: harness.port, "GET", "/v1/models", headers: harness.bearer)
            #expect((try jsonObject(full.body)["data"] as? [Any])?.count == 1)
        }
    }
}
