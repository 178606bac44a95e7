import Foundation
import Testing
import VLLMSim

/// The Python interpreter with the pinned `openai` SDK: `$WARDEN_TEST_PYTHON` (set by scripts/test) or the
/// package's `.venv`. Missing, the test fails and says how to get it, rather than skipping silently.
func testPython() -> String? {
    if let configured = ProcessInfo.processInfo.environment["WARDEN_TEST_PYTHON"], !configured.isEmpty { return configured }
    let venv = packageRoot.appendingPathComponent(".venv/bin/python").path
    return FileManager.default.isExecutableFile(atPath: venv) ? venv : nil
}

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Runs a Python script of `Tests/Python` off the cooperative pool; returns its status and output.
func runPythonScript(_ name: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
    guard let python = testPython() else {
        Issue.record("no Python with the openai SDK: run scripts/test, which creates .venv from scripts/requirements-test.txt")
        return (-1, "")
    }
    return try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            do {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: python)
                process.arguments = [packageRoot.appendingPathComponent("Tests/Python/\(name)").path] + arguments
                let pipe = Pipe()
                process.standardOutput = pipe
                process.standardError = pipe
                try process.run()
                let output = pipe.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(returning: (process.terminationStatus, String(decoding: output, as: UTF8.self)))
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }
}

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
