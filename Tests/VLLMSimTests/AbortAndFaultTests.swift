import WardenTestSupport
import Foundation
import Testing
import VLLMSim

@Suite("vllm-sim: aborts on disconnect and injected faults")
struct AbortAndFaultTests {
    @Test("a streaming client that hangs up mid-stream aborts generation")
    func abortMidStream() async throws {
        // 200 tokens × 100 ms = 20 s: the hang-up comes mid-stream however loaded the machine.
        try await withSimulator(SimulatorConfiguration(interTokenLatency: .milliseconds(100), outputTokens: 200)) { simulator, port throws in
            let connection = try TestHTTPConnection(port: port)
            connection.post("/v1/chat/completions", json: chat(#","stream":true"#))
            _ = try connection.read(through: "\r\n\r\n")
            _ = try connection.read(through: #""content":" "#)
            connection.hangUp()
            #expect(try await eventually { try simulator.stat("aborted") == 1 })
            #expect(try simulator.stat("in_flight") == 0)
            let generated = try simulator.stat("generated_tokens")
            #expect(generated >= 1 && generated < 200)
        }
    }

    @Test("a non-streaming client that hangs up during prefill aborts before the first token")
    func abortDuringPrefill() async throws {
        try await withSimulator(SimulatorConfiguration(timeToFirstToken: .seconds(30))) { simulator, port throws in
            let connection = try TestHTTPConnection(port: port)
            connection.post("/v1/chat/completions", json: chat())
            #expect(try await eventually { try simulator.stat("in_flight") == 1 })
            connection.hangUp()
            #expect(try await eventually { try simulator.stat("aborted") == 1 })
            #expect(try simulator.stat("generated_tokens") == 0)
            #expect(try simulator.stat("completed") == 0)
        }
    }

    @Test("a streaming client that hangs up during prefill aborts too")
    func abortStreamingPrefill() async throws {
        try await withSimulator(SimulatorConfiguration(timeToFirstToken: .seconds(30))) { simulator, port throws in
            let connection = try TestHTTPConnection(port: port)
            connection.post("/v1/chat/completions", json: chat(#","stream":true"#))
            _ = try connection.read(through: "\r\n\r\n")
            connection.hangUp()
            #expect(try await eventually { try simulator.stat("aborted") == 1 })
        }
    }

    @Test("fail-percent=100 answers 500 in vLLM's error shape; 0 never fails")
    func failPercent() async throws {
        try await withSimulator { simulator, port throws in
            let failed = try request(port: port, "POST", "/v1/chat/completions", json: chat(), headers: ["x-sim-fault": "fail-percent=100"])
            #expect(failed.status == 500)
            let error = try #require(try jsonObject(failed.body)["error"] as? [String: Any])
            #expect(error["type"] as? String == "InternalServerError")
            #expect(error["code"] as? Int == 500)
            #expect(try request(port: port, "POST", "/v1/chat/completions", json: chat(), headers: ["x-sim-fault": "fail-percent=0"]).status == 200)
            #expect(try simulator.stat("failed") == 1)
        }
    }

    @Test("close-after drops the connection after N tokens, without [DONE]")
    func closeAfter() async throws {
        try await withSimulator { _, port throws in
            let connection = try TestHTTPConnection(port: port)
            connection.post("/v1/completions", json: #"{"prompt":"x","stream":true}"#, headers: ["x-sim-fault": "close-after=2"])
            let received = try connection.readToClose()
            #expect(received.components(separatedBy: "data: {").count - 1 == 2)
            #expect(!received.contains("[DONE]"))
        }
    }

    @Test("error-after sends an in-stream error event, then [DONE], with status 200")
    func errorAfter() async throws {
        try await withSimulator { _, port throws in
            let response = try request(port: port, "POST", "/v1/completions", json: #"{"prompt":"x","stream":true}"#,
                                       headers: ["x-sim-fault": "error-after=2"])
            #expect(response.status == 200)
            let payloads = events(response.body)
            #expect(payloads.count == 4)
            #expect(try jsonObject(payloads[2])["error"] != nil)
            #expect(payloads[3] == "[DONE]")
        }
    }

    @Test("head-delay-ms holds back the response head")
    func headDelay() async throws {
        try await withSimulator { _, port throws in
            let started = ContinuousClock.now
            let response = try request(port: port, "POST", "/v1/completions", json: #"{"prompt":"x"}"#, headers: ["x-sim-fault": "head-delay-ms=300"])
            #expect(response.status == 200)
            #expect(ContinuousClock.now - started >= .milliseconds(300))
        }
    }

    @Test("an unhealthy engine answers /health with 503 and an empty body")
    func unhealthy() async throws {
        try await withSimulator { _, port throws in
            #expect(try request(port: port, "POST", "/sim/faults", json: #"{"unhealthy":true}"#).status == 200)
            let health = try request(port: port, "GET", "/health")
            #expect(health.status == 503)
            #expect(health.body.isEmpty)
            _ = try request(port: port, "POST", "/sim/faults", json: #"{"unhealthy":false}"#)
            #expect(try request(port: port, "GET", "/health").status == 200)
        }
    }

    @Test("an unknown fault name is refused, so a typo in a test cannot pass silently")
    func unknownFault() async throws {
        try await withSimulator { _, port throws in
            #expect(try request(port: port, "POST", "/v1/completions", json: #"{"prompt":"x"}"#, headers: ["x-sim-fault": "fial-percent=1"]).status == 400)
        }
    }

    @Test("max-num-seqs makes excess requests wait, visible in num_requests_waiting")
    func sequenceCap() async throws {
        let configuration = SimulatorConfiguration(interTokenLatency: .milliseconds(50), outputTokens: 6, maxNumSeqs: 1)
        try await withSimulator(configuration) { simulator, port throws in
            let first = try TestHTTPConnection(port: port)
            // The first holds the only slot for 30 s, so the second waits however loaded the machine is.
            first.post("/v1/completions", json: #"{"prompt":"a","stream":true,"max_tokens":600}"#, headers: ["x-sim-fault": "output-tokens=600"])
            _ = try first.read(through: "data: ")
            let second = try TestHTTPConnection(port: port)
            second.post("/v1/completions", json: #"{"prompt":"b","stream":true}"#)
            #expect(try await eventually(timeout: .seconds(20)) { try simulator.stat("waiting") == 1 })
            #expect(try request(port: port, "GET", "/metrics").body.contains("vllm:num_requests_waiting{engine=\"0\",model_name=\"sim-model\"} 1.0"))
            first.hangUp()
            #expect(try second.readResponse().body.hasSuffix("data: [DONE]\n\n"), "the freed slot goes to the waiting request")
            #expect(try simulator.stat("completed") == 1)
            #expect(try simulator.stat("aborted") == 1)
            #expect(try simulator.stat("waiting") == 0)
        }
    }

    @Test("shutdown with a timeout lets in-flight requests finish; without one it aborts them")
    func shutdownDrain() async throws {
        for (timeout, expectCompleted) in [(Duration.seconds(5), true), (Duration.zero, false)] {
            let simulator = VLLMSimulator(configuration: SimulatorConfiguration(interTokenLatency: .milliseconds(20), outputTokens: 10,
                                                                                shutdownTimeout: timeout))
            let port = try await simulator.start(host: "127.0.0.1", port: 0)
            let connection = try TestHTTPConnection(port: port)
            // 10 tokens finish well inside the 5 s drain; 1000 (20 s) cannot finish when nothing may drain.
            let tokens = expectCompleted ? 10 : 1000
            connection.post("/v1/completions", json: #"{"prompt":"x","stream":true,"max_tokens":1000}"#, headers: ["x-sim-fault": "output-tokens=\(tokens)"])
            _ = try connection.read(through: "data: ")
            await simulator.shutdown()
            let rest = try connection.readToClose()
            #expect(rest.contains("[DONE]") == expectCompleted)
            #expect(try simulator.stat(expectCompleted ? "completed" : "aborted") == 1)
            #expect((try? TestHTTPConnection(port: port)) == nil)
        }
    }
}
