import Foundation
import Testing

/// The Python interpreter with the pinned clients (openai SDK, guidellm, LiteLLM): `$WARDEN_TEST_PYTHON` (set by scripts/test) or the
/// package's `.venv`. Missing, the test fails and says how to get it, rather than skipping silently.
public func testPython() -> String? {
    if let configured = ProcessInfo.processInfo.environment["WARDEN_TEST_PYTHON"], !configured.isEmpty { return configured }
    let venv = packageRoot.appendingPathComponent(".venv/bin/python").path
    return FileManager.default.isExecutableFile(atPath: venv) ? venv : nil
}

public let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Runs a Python script of `Tests/Python` off the cooperative pool; returns its status and output.
public func runPythonScript(_ name: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
    guard let python = testPython() else {
        Issue.record("no Python with the pinned clients: run scripts/test, which creates .venv from scripts/requirements-test.txt")
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

