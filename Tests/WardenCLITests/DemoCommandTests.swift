import Foundation
import Testing
import WardenTestSupport

/// `warden demo` prints commands that work as printed: each is run through a shell, as a user pastes it.
@Suite("warden demo (the real binary)")
struct DemoCommandTests {
    /// A running `warden demo` and what it printed up to its "Ctrl-C stops the demo" line; its standard error is kept
    /// in `errors`.
    struct Demo {
        let process: Process
        let text: String
        let errors: Pipe
    }

    func startDemo() throws -> Demo {
        let process = Process()
        process.executableURL = BuiltProduct.directory.appendingPathComponent("warden")
        process.arguments = ["demo", "--port", "0", "--admin-port", "0"]
        process.currentDirectoryURL = packageRoot  // where scripts/test made .venv, as after the quick start
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        var text = ""
        let reader = output.fileHandleForReading
        let deadline = ContinuousClock.now + .seconds(20)
        while !text.contains("Ctrl-C stops the demo"), ContinuousClock.now < deadline {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        return Demo(process: process, text: text, errors: errors)
    }

    @Test("Ctrl-C drains the gateway before vllm-sim stops: a stream in flight runs to its end, no readiness probe fails, exit 0")
    func interruptDrains() async throws {
        let demo = try startDemo()
        defer { if demo.process.isRunning { demo.process.terminate() }; demo.process.waitUntilExit() }
        let port = try #require(demo.text.firstMatch(of: /behind the gateway on 127\.0\.0\.1:(\d+)/).flatMap { Int($0.1) }, "\(demo.text)")
        let key = try #require(demo.text.firstMatch(of: /Demo key: (\S+)/).map { String($0.1) })
        let stream = try TestHTTPConnection(port: port)
        stream.post("/v1/chat/completions", json: #"{"model":"qwen-demo","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#,
                    headers: ["Authorization": "Bearer \(key)"])
        _ = try stream.read(through: "data: ")
        kill(demo.process.processIdentifier, SIGINT)
        let rest = try stream.readToClose()
        #expect(rest.contains("data: [DONE]"), "\(rest)")
        #expect(!rest.contains("error"), "the stream ran to its end, not cut by vllm-sim stopping first: \(rest)")
        #expect(try await eventually(timeout: .seconds(20)) { !demo.process.isRunning })
        #expect(demo.process.terminationStatus == 0)
        let errors = String(decoding: demo.errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(!errors.contains("probe failed"), "\(errors)")
    }

    @Test("a port out of range is refused by name, before anything starts")
    func badPorts() throws {
        for arguments in [["--port", "65536"], ["--port=-1"], ["--admin-port", "70000"]] {
            let result = try BuiltProduct.run("warden", ["demo"] + arguments)
            #expect(result.status == 2 && result.stderr.contains("is not a port"), "\(arguments): \(result.stderr)")
        }
    }

    @Test("every printed curl and openai command works as printed")
    func printedCommandsWork() async throws {
        let demo = try startDemo()
        let text = demo.text
        defer { demo.process.terminate(); demo.process.waitUntilExit() }
        // Commands are the lines starting with curl or a Python path, continuation lines joined.
        let joined = text.replacingOccurrences(of: "\\\n", with: " ")
        let commands = joined.split(separator: "\n").map { String($0).trimmingCharacters(in: .whitespaces) }
            .filter { $0.hasPrefix("curl ") || $0.hasPrefix(".venv/bin/python") }
        #expect(commands.count == 4, "\(text)")
        for command in commands {
            let shell = Process()
            shell.executableURL = URL(fileURLWithPath: "/bin/bash")
            shell.arguments = ["-c", command]
            shell.currentDirectoryURL = packageRoot
            let pipe = Pipe()
            shell.standardOutput = pipe
            try shell.run()
            let printed = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            shell.waitUntilExit()
            #expect(shell.terminationStatus == 0, "\(command)")
            #expect(!printed.isEmpty, "\(command) printed nothing")
            if command.contains("/tokenize") { #expect(printed.contains("404"), "\(printed)") }
            if command.contains("\"stream\":true") { #expect(printed.contains("data: [DONE]")) }
        }
    }
}
