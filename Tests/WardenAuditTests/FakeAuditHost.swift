#if canImport(Glibc)
import Glibc
#endif
import WardenAudit
import WardenPreflight
import WardenSystemd

/// An in-memory host for audits: files, processes, `systemctl` answers and HTTP statuses, all set by the test.
struct FakeAuditHost: AuditHost {
    struct Process {
        var argv: [String]
        var unit: String?
        var environment: [String: String]?
        var sockets: Set<UInt64> = []
    }

    var files: [String: FileInfo] = [:]
    var contents: [String: [UInt8]] = [:]
    var writable: Set<String> = []
    var accounts: [String: Account] = ["vllm": Account(name: "vllm", uid: 990, gid: 990, home: "/var/lib/vllm")]
    var processTable: [Int: Process] = [:]
    /// `systemctl …` / `systemd-analyze …` command lines to their standard output; anything else fails.
    var commandOutputs: [String: String] = ["systemctl --version": "systemd 252 (252.39-1~deb12u1)\n"]
    /// Route to status; routes not listed answer 404. `nil` sends real requests instead.
    var routes: [String: Int]? = [:]
    var environment: [String: String] = [:]
    var effectiveUID: UInt32 = 0

    func nvmlReport(deviceIndexes: GPUSelection) -> NVMLReport { NVMLReport() }
    func fileInfo(_ path: String) -> FileInfo? { files[path] }
    func readFile(_ path: String, limit: Int) -> [UInt8]? { files[path] == nil ? nil : contents[path].map { Array($0.prefix(limit)) } }
    func listDirectory(_ path: String) -> [String]? {
        guard files[path]?.kind == .directory else { return nil }
        let prefix = path == "/" ? "/" : path + "/"
        return files.keys.filter { $0.hasPrefix(prefix) && $0 != path && !$0.dropFirst(prefix.count).contains("/") }.map { String($0.dropFirst(prefix.count)) }.sorted()
    }
    func filesystemSpace(_ path: String) -> FilesystemSpace? { nil }
    func probeWrite(directory: String, as account: Account) -> WriteProbe {
        files[directory]?.kind == .directory ? (writable.contains(directory) ? .writable : .denied("Permission denied")) : .missing
    }
    func lookupAccount(_ name: String) -> Account? { accounts[name] }
    func lookupGroup(_ name: String) -> UInt32? { accounts[name]?.gid }
    func bindError(host: String, port: Int) -> String? { nil }
    func processes() -> [HostProcess] { processTable.keys.sorted().map { HostProcess(pid: $0, name: "python3", uid: 990) } }
    func availableMemory() -> UInt64? { 64 << 30 }
    func openFileLimit() -> (soft: UInt64, hard: UInt64) { (65_535, 524_288) }

    func commandLine(pid: Int) -> [String]? { processTable[pid]?.argv }
    func processEnvironment(pid: Int) -> [String: String]? { processTable[pid]?.environment }
    func socketInodes(pid: Int) -> Set<UInt64>? { processTable[pid]?.sockets }
    var commands: any CommandRunner { CannedRunner(outputs: commandOutputs) }
    func httpGet(host: String, port: Int, path: String, timeout: Duration) -> ProbeResult {
        // Live probes (LiveProbeTests) get 30 s, not the audit's 3 s: a loaded machine must not drop a route that answers.
        guard let routes else { return LinuxHost().httpGet(host: host, port: port, path: path, timeout: .seconds(30)) }
        return .status(routes[path] ?? 404)
    }

    mutating func file(_ path: String, _ text: String, mode: UInt32 = 0o644, uid: UInt32 = 0, gid: UInt32 = 0) {
        directory(parentOf(path))
        files[path] = FileInfo(kind: .regular, size: UInt64(text.utf8.count), mode: mode, uid: uid, gid: gid)
        contents[path] = Array(text.utf8)
    }

    mutating func directory(_ path: String) {
        var current = ""
        files["/"] = FileInfo(kind: .directory, mode: 0o755)
        for component in path.split(separator: "/") {
            current += "/" + component
            if files[current] == nil { files[current] = FileInfo(kind: .directory, mode: 0o755) }
        }
    }

    /// A process of `unit` with its `/proc/<pid>/cgroup`.
    mutating func process(_ pid: Int, _ argv: [String], unit: String?, environment: [String: String]?, sockets: Set<UInt64> = []) {
        processTable[pid] = Process(argv: argv, unit: unit, environment: environment, sockets: sockets)
        if let unit { file("/proc/\(pid)/cgroup", "0::/system.slice/\(unit)\n") }
    }

    /// `/proc/net/tcp` with LISTEN rows for IPv4 `address:port` and socket inode.
    mutating func listening(_ sockets: [(address: String, port: Int, inode: UInt64)]) {
        var table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        for (index, socket) in sockets.enumerated() {
            let octets = socket.address.split(separator: ".").compactMap { UInt32($0) }
            let word = octets.reversed().reduce(UInt32(0)) { $0 << 8 | $1 }
            let hex = String(word, radix: 16, uppercase: true)
            let address = String(repeating: "0", count: 8 - hex.count) + hex
            let port = String(socket.port, radix: 16, uppercase: true)
            table += "   \(index): \(address):\(String(repeating: "0", count: 4 - port.count) + port) 00000000:0000 0A 00000000:00000000 00:00000000 00000000   990        0 \(socket.inode) 1 0000000000000000 100 0 0 10 0\n"
        }
        file("/proc/net/tcp", table)
    }

    /// The installed vLLM, as its dist-info records it.
    mutating func vllmVersion(_ version: String, venv: String = "/opt/vllm/.venv") {
        file("\(venv)/lib/python3.12/site-packages/vllm-\(version).dist-info/METADATA", "Metadata-Version: 2.1\nName: vllm\nVersion: \(version)\n")
    }

    /// `systemctl cat`, `show -p MainPID` and `systemd-analyze security` for a unit.
    mutating func unit(_ name: String, text: String, mainPID: Int, exposure: Double) {
        commandOutputs["systemctl cat \(name)"] = "# /etc/systemd/system/\(name)\n" + text
        commandOutputs["systemctl show -p MainPID --value \(name)"] = "\(mainPID)\n"
        commandOutputs["systemd-analyze security --no-pager \(name)"] =
            "  NAME  DESCRIPTION  EXPOSURE\n✗ PrivateNetwork=  Service has access to the host's network  0.5\n✗ DeviceAllow=  Service has no device ACL  0.2\n→ Overall exposure level for \(name): \(exposure) OK\n"
    }
}

private func parentOf(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
    return String(path[..<slash])
}

/// Answers commands from a table; a command not in it exits 1, as a missing unit does.
struct CannedRunner: CommandRunner {
    var outputs: [String: String]
    func run(_ executable: String, _ arguments: [String]) throws -> CommandOutput {
        let line = ([executable] + arguments).joined(separator: " ")
        return outputs[line].map { CommandOutput(status: 0, stdout: $0) } ?? CommandOutput(status: 1, stderr: "not faked: \(line)")
    }
}
