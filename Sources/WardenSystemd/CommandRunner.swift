#if canImport(Glibc)
import Glibc
#endif

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

/// The real runner: looks the tool up in PATH and runs it to completion with `posix_spawn`, standard input from
/// `/dev/null`, both outputs read as they come (a chatty tool never blocks on a full pipe).
public struct ProcessRunner: CommandRunner {
    public init() {}

    public func run(_ executable: String, _ arguments: [String]) throws -> CommandOutput {
        guard let path = Self.locate(executable) else { throw CommandNotFound(command: executable) }
        var output: [Int32] = [-1, -1], errors: [Int32] = [-1, -1]
        guard pipe(&output) == 0, pipe(&errors) == 0 else { throw SpawnError(command: path, code: errno) }
        // The child gets them as 1 and 2 (dup2 clears the flag); no other child may inherit them.
        for descriptor in output + errors { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errors[1], 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, nil, argv, environ)
        close(output[1])
        close(errors[1])
        guard spawned == 0 else {
            close(output[0])
            close(errors[0])
            throw SpawnError(command: path, code: spawned)
        }
        let (stdout, stderr) = Self.readBoth(output[0], errors[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        // WIFEXITED / WEXITSTATUS, which Swift does not import; a signal reads as 128 + its number, as in a shell.
        let code = status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return CommandOutput(status: code, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// Reads two pipes to their ends, whichever has data first; closes both.
    private static func readBoth(_ first: Int32, _ second: Int32) -> ([UInt8], [UInt8]) {
        var descriptors = [pollfd(fd: first, events: Int16(POLLIN), revents: 0), pollfd(fd: second, events: Int16(POLLIN), revents: 0)]
        var collected: [[UInt8]] = [[], []]
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while descriptors.contains(where: { $0.fd >= 0 }) {
            guard poll(&descriptors, 2, -1) >= 0 || errno == EINTR else { break }
            for index in 0..<2 where descriptors[index].fd >= 0 && descriptors[index].revents != 0 {
                let count = chunk.withUnsafeMutableBytes { read(descriptors[index].fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    collected[index] += chunk[0..<count]
                } else if count == 0 || errno != EINTR {
                    close(descriptors[index].fd)
                    descriptors[index].fd = -1
                }
            }
        }
        return (collected[0], collected[1])
    }

    static func locate(_ executable: String) -> String? {
        if executable.hasPrefix("/") { return access(executable, X_OK) == 0 ? executable : nil }
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        let directories: [String] = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"]
        return directories.map { $0 + "/" + executable }.first { access($0, X_OK) == 0 }
    }
}

/// `posix_spawn` itself failed (not the command it started).
public struct SpawnError: Error, CustomStringConvertible {
    public var command: String
    public var code: Int32
    public var description: String { "cannot start \(command): \(String(cString: strerror(code)))" }
}
