import Foundation

/// What an external command printed and how it ended.
public struct CommandOutput: Sendable, Equatable {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    public init(status: Int32, stdout: String = "", stderr: String = "") {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }

    public var combined: String { stdout + stderr }
}

/// Runs external tools (`systemd-analyze`, `systemd-run`, `useradd`, `systemctl`); faked in tests.
public protocol CommandRunner: Sendable {
    func run(_ executable: String, _ arguments: [String]) throws -> CommandOutput
}

/// Why a command could not be started at all.
public struct CommandNotFound: Error, CustomStringConvertible {
    public var command: String
    public var description: String { "\(command) is not installed or not executable (install Debian's `systemd` package)" }
}

/// The real runner: looks the tool up in PATH and runs it to completion.
public struct ProcessRunner: CommandRunner {
    public init() {}

    public func run(_ executable: String, _ arguments: [String]) throws -> CommandOutput {
        guard let path = Self.locate(executable) else { throw CommandNotFound(command: executable) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes concurrently so a chatty tool cannot block on a full pipe.
        let errorData = ResultHolder()
        let reader = Thread { errorData.data = err.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let outputData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !reader.isFinished { usleep(1000) }
        return CommandOutput(status: process.terminationStatus, stdout: String(decoding: outputData, as: UTF8.self),
                             stderr: String(decoding: errorData.data, as: UTF8.self))
    }

    static func locate(_ executable: String) -> String? {
        if executable.hasPrefix("/") { return FileManager.default.isExecutableFile(atPath: executable) ? executable : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        let directories: [String] = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"]
        return directories.map { $0 + "/" + executable }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

private final class ResultHolder: @unchecked Sendable {
    var data = Data()
}
