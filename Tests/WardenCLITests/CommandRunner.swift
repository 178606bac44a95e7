import Foundation
import WardenTestSupport

/// Runs a binary built next to the test bundle and captures what it printed.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum BuiltProduct {
    /// The directory holding the built products (`.build/debug`), found from the running test bundle.
    static var directory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    }

    static func run(_ name: String, _ arguments: [String], environment: [String: String] = [:]) throws -> CommandResult {
        try run(executable: directory.appendingPathComponent(name).path, arguments, environment: environment)
    }

    /// Runs a product as an account without privileges: as `nobody` (through `setpriv`, from a copy in `scratch`,
    /// since the build folder may be out of its reach) when the tests run as root, else as the tests' own user.
    static func runUnprivileged(_ name: String, _ arguments: [String], copyingInto scratch: ScratchDirectory) throws -> CommandResult {
        let copy = try copy(name, into: scratch)
        guard getuid() == 0 else { return try run(executable: copy, arguments) }
        return try run(executable: "/usr/bin/setpriv", ["--reuid=\(nobody)", "--regid=\(nobody)", "--clear-groups", "--", copy] + arguments)
    }

    static let nobody: uid_t = 65_534

    /// A copy of a product in `scratch` (once), for an account that cannot reach the build folder.
    static func copy(_ name: String, into scratch: ScratchDirectory) throws -> String {
        let copy = scratch.url.appendingPathComponent(name).path
        if !FileManager.default.fileExists(atPath: copy) {
            try FileManager.default.copyItem(atPath: directory.appendingPathComponent(name).path, toPath: copy)
        }
        return copy
    }

    private static func run(executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        merged.removeValue(forKey: "WARDEN_CONFIG")
        merged.merge(environment) { $1 }
        process.environment = merged
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CommandResult(status: process.terminationStatus,
                             stdout: String(decoding: stdout, as: UTF8.self),
                             stderr: String(decoding: stderr, as: UTF8.self))
    }
}

/// A scratch directory removed when the value is dropped.
final class ScratchDirectory {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("warden-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func write(_ name: String, _ text: String) throws -> String {
        let file = url.appendingPathComponent(name)
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// Loopback ports that were free a moment ago, for processes that cannot be asked which port they bound. All are
/// held open until every one is chosen, so the same port is never handed out twice.
func freePorts(_ count: Int) throws -> [Int] {
    var descriptors: [Int32] = []
    defer { descriptors.forEach { close($0) } }
    return (0..<count).map { _ in
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        descriptors.append(descriptor)
        return bindLoopback(descriptor) ?? 0
    }
}
