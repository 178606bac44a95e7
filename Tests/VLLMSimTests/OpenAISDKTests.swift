import WardenTestSupport
import Foundation
import Testing
import VLLMSim

@Suite("vllm-sim with the official openai Python SDK")
struct OpenAISDKTests {
    @Test("chat and completions, streaming and not, with usage when asked")
    func sdkAgainstSimulator() async throws {
        try await withSimulator(SimulatorConfiguration(servedModelName: "qwen", apiKeys: ["sdk-key"], outputTokens: 8)) { simulator, port in
            let result = try await runPythonScript("openai_client_check.py", ["http://127.0.0.1:\(port)/v1", "sdk-key", "qwen"])
            #expect(result.status == 0, "\(result.output)")
            let observed = try jsonObject(result.output.split(separator: "\n").last.map(String.init) ?? "{}")
            #expect(observed["models"] as? [String] == ["qwen"])
            #expect(observed["unknown_model_status"] as? Int == 404)
            let requests = try jsonObject(simulator.statsJSON)["requests"] as? [String: Int] ?? [:]
            #expect(requests["POST /v1/chat/completions"] == 3)
            #expect(requests["POST /v1/completions"] == 2)
        }
    }
}
