import WardenTestSupport
import Testing
import VLLMSim

@Suite("vllm-sim: --api-key guards only what vLLM guards")
struct AuthScopeTests {
    let configuration = SimulatorConfiguration(apiKeys: ["key-one", "key-two"])

    @Test("guarded prefixes need the key; vLLM's 401 body is not the OpenAI envelope")
    func guardedRoutes() async throws {
        try await withSimulator(configuration) { _, port throws in
            for path in ["/v1/models", "/v1/anything", "/v2/rerank", "/inference/v1/generate"] {
                let response = try request(port: port, path == "/v1/models" ? "GET" : "POST", path, json: path == "/v1/models" ? nil : "{}")
                #expect(response.status == 401, "\(path)")
                #expect(response.body == #"{"error":"Unauthorized"}"#)
            }
            let wrong = try request(port: port, "GET", "/v1/models", headers: ["Authorization": "Bearer nope"])
            #expect(wrong.status == 401)
            let basic = try request(port: port, "GET", "/v1/models", headers: ["Authorization": "Basic key-one"])
            #expect(basic.status == 401)
        }
    }

    @Test("the scheme is case-insensitive and any configured key works")
    func acceptedKeys() async throws {
        try await withSimulator(configuration) { _, port throws in
            #expect(try request(port: port, "GET", "/v1/models", headers: ["Authorization": "bearer key-one"]).status == 200)
            #expect(try request(port: port, "GET", "/v1/models", headers: ["Authorization": "BEARER key-two"]).status == 200)
        }
    }

    @Test("open routes answer without any key — the weakness the gateway covers")
    func openRoutes() async throws {
        try await withSimulator(configuration) { simulator, port throws in
            let invocation = try request(port: port, "POST", "/invocations", json: #"{"prompt":"hi","max_tokens":2}"#)
            #expect(invocation.status == 200)
            #expect(invocation.body.contains("\"text_completion\""))
            #expect(try request(port: port, "POST", "/tokenize", json: #"{"prompt":"hi"}"#).status == 200)
            #expect(try request(port: port, "POST", "/pause", json: "{}").status == 200)
            #expect(try request(port: port, "POST", "/collective_rpc", json: "{}").status == 200)
            #expect(try request(port: port, "GET", "/health").status == 200)
            #expect(try request(port: port, "GET", "/metrics").status == 200)
            #expect(try request(port: port, "GET", "/version").status == 200)
            let stats = try jsonObject(simulator.statsJSON)["requests"] as? [String: Int] ?? [:]
            #expect(stats["POST /pause"] == 1)
            #expect(stats["POST /invocations"] == 1)
        }
    }

    @Test("unknown routes and wrong methods answer as FastAPI does")
    func unknownRoutes() async throws {
        try await withSimulator { _, port throws in
            let missing = try request(port: port, "GET", "/nope")
            #expect(missing.status == 404)
            #expect(missing.body == #"{"detail":"Not Found"}"#)
            #expect(try request(port: port, "GET", "/v1/chat/completions").status == 405)
        }
    }
}
