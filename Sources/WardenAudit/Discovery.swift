import WardenConfig
import WardenPreflight

/// The vLLM `warden audit` looks at: its unit, its process, its command line, environment and sockets.
public struct VLLMTarget: Sendable {
    public var unit: String?
    public var directives: UnitDirectives?
    /// The main API server process.
    public var pid: Int?
    /// The API server and its engine and worker processes (the unit's control group), for socket ownership.
    public var processIDs: [Int] = []
    public var invocation: VLLMInvocation?
    /// Where the command line was read: a process, or the unit's `ExecStart=` (and the script it runs).
    public var invocationSource: String?
    /// The process environment when readable, else what the unit's `Environment=` and `EnvironmentFile=` set.
    public var environment: [String: String] = [:]
    public var environmentFiles: [String] = []
    public var venv: String?
    public var version: String?
    /// Listening sockets of the API server.
    public var apiSockets: [ListeningSocket] = []
    /// Other listening sockets of the vLLM processes (torch.distributed, KV transfer, data parallel).
    public var otherSockets: [ListeningSocket] = []

    public var found: Bool { unit != nil || invocation != nil }
}

/// Finds the running vLLM: a named unit, else the processes whose command line is vLLM's API server (and the
/// unit whose control group holds them), else a unit whose `ExecStart=` (or the script it runs) is `vllm serve`.
enum Discovery {
    static func find(unit requestedUnit: String?, host: any AuditHost) -> VLLMTarget {
        var target = VLLMTarget()
        let matches = host.processes().compactMap { process in
            host.commandLine(pid: process.pid).flatMap(VLLMInvocation.init(argv:)).map { (pid: process.pid, invocation: $0) }
        }
        target.unit = requestedUnit ?? matches.lazy.compactMap { serviceUnit(pid: $0.pid, host: host) }.first ?? unitRunningVLLM(host: host)
        if let unit = target.unit, let text = systemctl(["cat", unit], host: host) {
            target.directives = UnitDirectives(text: text)
        }
        let mainPID = target.unit.flatMap { systemctl(["show", "-p", "MainPID", "--value", $0], host: host) }.flatMap { Int($0.trimmed()) }
        let process = matches.first { $0.pid == mainPID } ?? matches.first { target.unit == nil || serviceUnit(pid: $0.pid, host: host) == target.unit }
        if let process {
            target.pid = process.pid
            target.invocation = process.invocation
            target.invocationSource = "process \(process.pid)"
        } else if let directives = target.directives, let (invocation, source) = invocationFromUnit(directives, host: host) {
            target.invocation = invocation
            target.invocationSource = source
        }
        if let pid = target.pid {
            let group = host.readFile("/proc/\(pid)/cgroup", limit: 4096)
            target.processIDs = group == nil ? [pid] : host.processes().map(\.pid).filter { host.readFile("/proc/\($0)/cgroup", limit: 4096) == group }
        }
        target.environmentFiles = target.directives?.values("EnvironmentFile").filter { !$0.isEmpty }
            .map { $0.hasPrefix("-") ? String($0.dropFirst()) : $0 } ?? []
        target.environment = target.pid.flatMap(host.processEnvironment(pid:)) ?? unitEnvironment(target, host: host)
        target.venv = target.invocation?.venv
        target.version = target.venv.flatMap { PythonEnvironment(venv: $0, host: host)?.version(of: "vllm", host: host) }
        findSockets(&target, host: host)
        return target
    }

    static func systemctl(_ arguments: [String], host: any AuditHost) -> String? {
        guard let output = try? host.commands.run("systemctl", arguments), output.status == 0 else { return nil }
        return output.stdout
    }

    /// The `.service` whose control group holds the process (`0::/system.slice/vllm.service`).
    static func serviceUnit(pid: Int, host: any AuditHost) -> String? {
        guard let bytes = host.readFile("/proc/\(pid)/cgroup", limit: 4096) else { return nil }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").lazy
            .compactMap { $0.split(separator: "/").last { $0.hasSuffix(".service") } }.first.map(String.init)
    }

    /// A loaded unit whose `ExecStart=` (or the script it runs) starts `vllm serve`.
    static func unitRunningVLLM(host: any AuditHost) -> String? {
        let list = systemctl(["list-units", "--type=service", "--all", "--plain", "--no-legend", "--no-pager"], host: host) ?? ""
        let names = list.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }.filter { $0.hasSuffix(".service") }
        return names.first { name in
            systemctl(["cat", name], host: host).map { invocationFromUnit(UnitDirectives(text: $0), host: host) != nil } ?? false
        }
    }

    /// The command line from `ExecStart=`, or from the script `ExecStart=` runs.
    static func invocationFromUnit(_ directives: UnitDirectives, host: any AuditHost) -> (VLLMInvocation, String)? {
        for line in directives.values("ExecStart") where !line.isEmpty {
            let command = line.drop { "-@:+!".contains($0) }
            if let invocation = VLLMInvocation(script: String(command)) { return (invocation, "ExecStart=") }
            guard let program = shellWords(String(command)).first,
                  let script = host.readFile(program, limit: 1 << 20).map({ String(decoding: $0, as: UTF8.self) }),
                  let invocation = VLLMInvocation(script: script) else { continue }
            return (invocation, "\(program) (ExecStart=)")
        }
        return nil
    }

    /// `Environment=` assignments, then each `EnvironmentFile=` (as systemd applies them).
    static func unitEnvironment(_ target: VLLMTarget, host: any AuditHost) -> [String: String] {
        var environment = environmentDictionary(target.directives?.values("Environment").flatMap { shellWords($0) } ?? [])
        for file in target.environmentFiles {
            guard let bytes = host.readFile(file, limit: 1 << 20) else { continue }
            for (name, value) in environmentFileAssignments(String(decoding: bytes, as: UTF8.self)) { environment[name] = value }
        }
        return environment
    }

    /// The API server's sockets by ownership (`/proc/<pid>/fd`), else by port; the rest of the group's as others.
    static func findSockets(_ target: inout VLLMTarget, host: any AuditHost) {
        guard let invocation = target.invocation else { return }
        let listening = ListeningSocket.all(host: host)
        let owned = target.processIDs.compactMap(host.socketInodes(pid:))
        if owned.isEmpty {
            target.apiSockets = listening.filter { $0.port == invocation.port }
            return
        }
        let inodes = owned.reduce(into: Set<UInt64>()) { $0.formUnion($1) }
        let ours = listening.filter { inodes.contains($0.inode) }
        target.apiSockets = ours.filter { $0.port == invocation.port }
        target.otherSockets = ours.filter { $0.port != invocation.port }
    }
}
