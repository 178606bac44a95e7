import Foundation
import Testing
import WardenTestSupport

/// `warden demo` prints commands that work as printed: each is run through a shell, as a user pastes it.
@Suite("warden demo (the real binary)")
struct DemoCommandTests {
    @Test("every printed curl and openai command works as printed")
    func printedCommandsWork() async throws {
        let process = Process()
        process.executableURL = BuiltProduct.directory.appendingPathComponent("warden")
        process.arguments = ["demo", "--port", "0", "--admin-port", "0"]
        process.currentDirectoryURL = packageRoot  // where scripts/test made .venv, as after the quick start
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { process.terminate(); process.waitUntilExit() }
        var text = ""
        let reader = output.fileHandleForReading
        let deadline = ContinuousClock.now + .seconds(20)
        while !text.contains("Ctrl-C stops the demo"), ContinuousClock.now < deadline {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
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
