import WardenPreflight
import WardenSystemd

/// Everything `warden audit` learns about the machine: preflight's host (files, accounts, processes) plus the
/// process details, systemd and HTTP it needs, behind one protocol so every check runs against a fake host in tests.
public protocol AuditHost: PreflightHost {
    /// Arguments of a process (`/proc/<pid>/cmdline`); `nil` when it is gone.
    func commandLine(pid: Int) -> [String]?
    /// Environment of a process (`/proc/<pid>/environ`); `nil` when not readable by this user.
    func processEnvironment(pid: Int) -> [String: String]?
    /// Inodes of the sockets a process holds (`/proc/<pid>/fd`); `nil` when not readable by this user.
    func socketInodes(pid: Int) -> Set<UInt64>?
    /// Runs `systemctl` and `systemd-analyze`.
    var commands: any CommandRunner { get }
    /// `GET path` without credentials; never follows redirects.
    func httpGet(host: String, port: Int, path: String, timeout: Duration) -> ProbeResult
}

/// What one unauthenticated HTTP request got.
public enum ProbeResult: Sendable, Equatable {
    case status(Int)
    /// No HTTP answer (refused, timed out, reset), with the reason.
    case failed(String)
}
