import WardenConfig
@testable import WardenPreflight

/// An in-memory host: files, accounts, GPUs and limits, all set by the test.
struct FakeHost: PreflightHost {
    var nvml = NVMLReport()
    var files: [String: FileInfo] = [:]
    var contents: [String: [UInt8]] = [:]
    var spaces: [String: FilesystemSpace] = [:]
    var writable: Set<String> = []
    var accounts: [String: Account] = [:]
    var boundPorts: Set<Int> = []
    var processList: [HostProcess] = []
    var memoryAvailable: UInt64? = 64 << 30
    var fileLimit: (soft: UInt64, hard: UInt64) = (65_535, 524_288)
    var environment: [String: String] = [:]
    var effectiveUID: UInt32 = 997
    var nvmlCalls = Counter()

    final class Counter: @unchecked Sendable { var value = 0 }

    func nvmlReport(deviceIndexes: GPUSelection) -> NVMLReport {
        nvmlCalls.value += 1
        return nvml
    }
    func fileInfo(_ path: String) -> FileInfo? { files[path] }
    func readFile(_ path: String, limit: Int) -> [UInt8]? {
        guard files[path] != nil else { return nil }
        return contents[path].map { Array($0.prefix(limit)) }
    }
    func listDirectory(_ path: String) -> [String]? {
        guard files[path]?.kind == .directory else { return nil }
        let prefix = path == "/" ? "/" : path + "/"
        return files.keys.filter { $0.hasPrefix(prefix) && !$0.dropFirst(prefix.count).contains("/") && $0 != path }
            .map { String($0.dropFirst(prefix.count)) }.sorted()
    }
    func filesystemSpace(_ path: String) -> FilesystemSpace? {
        spaces.keys.filter { path.hasPrefix($0) }.max(by: { $0.count < $1.count }).flatMap { spaces[$0] }
    }
    func probeWrite(directory: String, as account: Account) -> WriteProbe {
        guard files[directory]?.kind == .directory else { return .missing }
        return writable.contains(directory) ? .writable : .denied("Permission denied")
    }
    func lookupAccount(_ name: String) -> Account? { accounts[name] }
    func lookupGroup(_ name: String) -> UInt32? { accounts[name]?.gid }
    func bindError(host: String, port: Int) -> String? { boundPorts.contains(port) ? "Address already in use" : nil }
    func processes() -> [HostProcess] { processList }
    func availableMemory() -> UInt64? { memoryAvailable }
    func openFileLimit() -> (soft: UInt64, hard: UInt64) { fileLimit }

    mutating func directory(_ path: String, mode: UInt32 = 0o755, uid: UInt32 = 0) {
        var current = ""
        for component in path.split(separator: "/") {
            current += "/" + component
            if files[current] == nil { files[current] = FileInfo(kind: .directory, mode: 0o755) }
        }
        files["/"] = files["/"] ?? FileInfo(kind: .directory)
        files[path] = FileInfo(kind: .directory, mode: mode, uid: uid)
    }

    mutating func file(_ path: String, _ text: String, mode: UInt32 = 0o644, uid: UInt32 = 0, executable: Bool = false) {
        file(path, Array(text.utf8), mode: mode, uid: uid, executable: executable)
    }

    mutating func file(_ path: String, _ bytes: [UInt8], mode: UInt32 = 0o644, uid: UInt32 = 0, executable: Bool = false) {
        directory(String(path[..<path.lastIndex(of: "/")!]))
        files[path] = FileInfo(kind: .regular, size: UInt64(bytes.count), mode: mode, uid: uid, isExecutable: executable)
        contents[path] = bytes
    }

    /// A host on which every check passes for ``FakeHost/deployment``.
    static func healthy() -> FakeHost {
        var host = FakeHost()
        let gib: UInt64 = 1 << 30
        host.nvml = NVMLReport(totalCount: 2, selected: [
            .init(index: 0, uuid: "GPU-aaaa", memoryTotal: 80 * gib, memoryFree: 79 * gib),
            .init(index: 1, uuid: "GPU-bbbb", memoryTotal: 80 * gib, memoryFree: 79 * gib),
        ], cudaDriverVersion: 13000, driverVersion: "580.159.04")
        for node in ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia0", "/dev/nvidia1"] {
            host.directory("/dev")
            host.files[node] = FileInfo(kind: .characterDevice, mode: 0o666, deviceMajor: 195)
        }
        host.file("/proc/devices", "Character devices:\n  1 mem\n195 nvidia-frontend\n195 nvidia\n195 nvidiactl\n234 nvidia-uvm\n237 nvidia-caps\n\nBlock devices:\n  8 sd\n")
        host.file("/venv/bin/python", "", mode: 0o755, executable: true)
        host.file("/venv/bin/vllm", "", mode: 0o755, executable: true)
        let site = "/venv/lib/python3.12/site-packages"
        host.file("\(site)/vllm-0.19.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: vllm\nVersion: 0.19.1\n")
        host.file("\(site)/torch/version.py", "__version__ = '2.9.0+cu128'\ndebug = False\ncuda: Optional[str] = '12.8'\nhip = None\n")
        host.file("/models/qwen/config.json", #"{"num_attention_heads":28,"max_position_embeddings":32768,"torch_dtype":"bfloat16"}"#)
        host.file("/models/qwen/tokenizer.json", "{}")
        host.file("/models/qwen/model.safetensors.index.json", #"{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#)
        for shard in ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"] {
            host.file("/models/qwen/\(shard)", safetensorsBytes())
        }
        host.accounts["vllm"] = Account(name: "vllm", uid: 997, gid: 997, home: "/var/lib/vllm")
        for directory in ["/var/lib/vllm", "/var/cache/vllm"] {
            host.directory(directory, mode: 0o700, uid: 997)
            host.writable.insert(directory)
        }
        host.spaces = ["/": FilesystemSpace(available: 500 * gib, total: 1000 * gib), "/dev/shm": FilesystemSpace(available: 64 * gib, total: 64 * gib)]
        host.file("/etc/warden/vllm.env", "VLLM_API_KEY=\(String(repeating: "0123456789abcdef", count: 4))\n", mode: 0o640)
        return host
    }

    /// A minimal valid safetensors file: 8-byte little-endian header length, then a JSON header, then data.
    static func safetensorsBytes() -> [UInt8] {
        let header = Array(#"{"__metadata__":{}}"#.utf8)
        var bytes = (0..<8).map { UInt8((UInt64(header.count) >> (8 * UInt64($0))) & 0xFF) }
        bytes += header + [UInt8](repeating: 0, count: 16)
        return bytes
    }

    static var deployment: Deployment {
        var deployment = Deployment(vllm: .init(model: "/models/qwen"))
        deployment.vllm.venv = "/venv"
        deployment.vllm.tensorParallelSize = 2
        return deployment
    }
}

func outcome(_ id: String, host: FakeHost, deployment: Deployment = FakeHost.deployment) -> CheckResult {
    let report = Preflight.run(deployment: deployment, host: host, only: [id])
    precondition(report.results.count == 1, "no check \(id)")
    return report.results[0]
}
