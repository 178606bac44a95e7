import WardenConfig
/// Everything preflight learns about the machine, behind one protocol so every check runs against a fake host in tests.
public protocol PreflightHost: Sendable {
    /// The GPU facts from NVML, gathered once per run; see ``NVMLReport``.
    func nvmlReport(deviceIndexes: GPUSelection) -> NVMLReport

    /// File facts (`lstat` following symlinks); `nil` when the path does not exist.
    func fileInfo(_ path: String) -> FileInfo?
    func readFile(_ path: String, limit: Int) -> [UInt8]?
    func listDirectory(_ path: String) -> [String]?
    /// Free and total bytes of the filesystem holding `path` (`statvfs`).
    func filesystemSpace(_ path: String) -> FilesystemSpace?
    /// Creates, fsyncs and removes a file in `directory` with the given account's file-system identity.
    func probeWrite(directory: String, as account: Account) -> WriteProbe

    func lookupAccount(_ name: String) -> Account?
    func lookupGroup(_ name: String) -> UInt32?
    /// Binds (without `SO_REUSEPORT`) and closes; `nil` on success, else the error text.
    func bindError(host: String, port: Int) -> String?
    /// Processes by id with their short name (`/proc/<pid>/comm`) and real uid.
    func processes() -> [HostProcess]
    /// `MemAvailable` of `/proc/meminfo`, in bytes; `nil` when hidden (e.g. `ProcSubset=pid`).
    func availableMemory() -> UInt64?
    /// `RLIMIT_NOFILE` (soft, hard).
    func openFileLimit() -> (soft: UInt64, hard: UInt64)
    var environment: [String: String] { get }
    var effectiveUID: UInt32 { get }
}

public struct FileInfo: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case regular, directory, characterDevice, other }
    public var kind: Kind
    public var size: UInt64
    /// Permission bits (`st_mode & 0o7777`).
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    /// Device major number for device nodes.
    public var deviceMajor: UInt32
    public var isExecutable: Bool

    public init(kind: Kind, size: UInt64 = 0, mode: UInt32 = 0o644, uid: UInt32 = 0, gid: UInt32 = 0,
                deviceMajor: UInt32 = 0, isExecutable: Bool = false) {
        self.kind = kind
        self.size = size
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.deviceMajor = deviceMajor
        self.isExecutable = isExecutable
    }
}

public struct FilesystemSpace: Sendable, Equatable {
    public var available: UInt64
    public var total: UInt64
    public init(available: UInt64, total: UInt64) {
        self.available = available
        self.total = total
    }
}

public struct Account: Sendable, Equatable {
    public var name: String
    public var uid: UInt32
    public var gid: UInt32
    public var home: String
    public init(name: String, uid: UInt32, gid: UInt32, home: String) {
        self.name = name
        self.uid = uid
        self.gid = gid
        self.home = home
    }
}

public enum WriteProbe: Sendable, Equatable {
    case writable
    case missing
    case denied(String)
}

public struct HostProcess: Sendable, Equatable {
    public var pid: Int
    public var name: String
    public var uid: UInt32
    public init(pid: Int, name: String, uid: UInt32) {
        self.pid = pid
        self.name = name
        self.uid = uid
    }
}

/// Which GPUs vLLM will see: all of them, or the `CUDA_VISIBLE_DEVICES` entries (indexes or `GPU-…` UUIDs).
public enum GPUSelection: Sendable, Equatable {
    case all
    case listed([String])

    public init(cudaVisibleDevices: String?) {
        guard let value = cudaVisibleDevices else { self = .all; return }
        self = .listed(value.split(separator: ",").map { $0.trimmed() }.filter { !$0.isEmpty })
    }
}

import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
