import WardenConfig
import CWardenShims
import Dispatch
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// The real host: NVML through `dlopen`, `/proc`, `statvfs`, `getpwnam`, sockets and files.
public struct LinuxHost: PreflightHost {
    /// Longest an NVML pass may take before it counts as a hung driver.
    public var nvmlBudget: Duration

    public init(nvmlBudget: Duration = .seconds(5)) {
        self.nvmlBudget = nvmlBudget
    }

    public var environment: [String: String] { ProcessInfo.processInfo.environment }
    public var effectiveUID: UInt32 { geteuid() }

    public func nvmlReport(deviceIndexes selection: GPUSelection) -> NVMLReport {
        let result = runWithBudget(nvmlBudget) { () -> NVMLReport in
            switch NVMLLibrary.load() {
            case .failure(let failure): return .failed(failure)
            case .success(let library): return NVMLReport.gather(library: library, selection: selection)
            }
        }
        return result ?? .failed(.timedOut)
    }

    public func fileInfo(_ path: String) -> FileInfo? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let format = info.st_mode & S_IFMT
        let kind: FileInfo.Kind = format == S_IFREG ? .regular : format == S_IFDIR ? .directory : format == S_IFCHR ? .characterDevice : .other
        return FileInfo(kind: kind, size: UInt64(info.st_size), mode: UInt32(info.st_mode & 0o7777), uid: info.st_uid, gid: info.st_gid,
                        deviceMajor: UInt32((info.st_rdev >> 8) & 0xfff), isExecutable: access(path, X_OK) == 0)
    }

    public func readFile(_ path: String, limit: Int) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: limit)
        var total = 0
        while total < limit {
            let count = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + total, limit - total) }
            if count <= 0 { break }
            total += count
        }
        return Array(bytes.prefix(total))
    }

    public func listDirectory(_ path: String) -> [String]? {
        try? FileManager.default.contentsOfDirectory(atPath: path)
    }

    public func filesystemSpace(_ path: String) -> FilesystemSpace? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return FilesystemSpace(available: UInt64(info.f_bavail) * UInt64(info.f_frsize), total: UInt64(info.f_blocks) * UInt64(info.f_frsize))
    }

    /// Switches this thread's file-system identity (`setfsuid`/`setfsgid`) when run as root, so the probe
    /// answers for the service user exactly; the switch is undone before returning.
    public func probeWrite(directory: String, as account: Account) -> WriteProbe {
        guard fileInfo(directory)?.kind == .directory else { return .missing }
        let switchIdentity = geteuid() == 0 && account.uid != 0
        if switchIdentity {
            _ = warden_setfsgid(account.gid)
            _ = warden_setfsuid(account.uid)
        }
        defer {
            if switchIdentity {
                _ = warden_setfsuid(0)
                _ = warden_setfsgid(0)
            }
        }
        let path = directory + "/.warden-preflight-\(getpid())"
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return .denied(String(cString: strerror(errno))) }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        unlink(path)
        return synced ? .writable : .denied("fsync failed: \(String(cString: strerror(errno)))")
    }

    public func lookupAccount(_ name: String) -> Account? {
        guard let entry = getpwnam(name) else { return nil }
        return Account(name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid, home: String(cString: entry.pointee.pw_dir))
    }

    public func lookupGroup(_ name: String) -> UInt32? {
        getgrnam(name)?.pointee.gr_gid
    }

    public func bindError(host: String, port: Int) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var results: UnsafeMutablePointer<addrinfo>?
        let bindHost = host.isEmpty ? "0.0.0.0" : host
        guard getaddrinfo(bindHost, String(port), &hints, &results) == 0, let first = results else {
            return "cannot resolve \(host)"
        }
        defer { freeaddrinfo(results) }
        let descriptor = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard descriptor >= 0 else { return String(cString: strerror(errno)) }
        defer { close(descriptor) }
        // SO_REUSEADDR like vLLM, but never SO_REUSEPORT: that would hide a second vLLM on the same port.
        var one: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(descriptor, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else { return String(cString: strerror(errno)) }
        return nil
    }

    public func processes() -> [HostProcess] {
        (listDirectory("/proc") ?? []).compactMap { entry in
            guard let pid = Int(entry), let comm = readFile("/proc/\(entry)/comm", limit: 64),
                  let status = readFile("/proc/\(entry)/status", limit: 4096) else { return nil }
            let uidLine = String(decoding: status, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("Uid:") }
            let uid = uidLine?.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first.flatMap { UInt32($0) } ?? 0
            return HostProcess(pid: pid, name: String(decoding: comm, as: UTF8.self).trimmed(), uid: uid)
        }
    }

    public func availableMemory() -> UInt64? {
        guard let bytes = readFile("/proc/meminfo", limit: 16_384) else { return nil }
        let line = String(decoding: bytes, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("MemAvailable:") }
        guard let kib = line?.split(separator: " ").dropFirst().first.flatMap({ UInt64($0) }) else { return nil }
        return kib * 1024
    }

    public func openFileLimit() -> (soft: UInt64, hard: UInt64) {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return (UInt64(limit.rlim_cur), UInt64(limit.rlim_max))
    }
}

/// Runs `work` on its own thread and waits at most `budget`; `nil` when it did not finish (the thread is
/// abandoned: a hung driver call cannot be interrupted, but it no longer holds up the start).
func runWithBudget<T: Sendable>(_ budget: Duration, _ work: @escaping @Sendable () -> T) -> T? {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    let started = detachThread {
        box.value = work()
        done.signal()
    }
    // Without a thread of its own the check runs here, unbounded: slower to give up, but still run.
    guard started else { return work() }
    let (seconds, attoseconds) = budget.components
    let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
    guard done.wait(timeout: .now() + .nanoseconds(nanoseconds)) == .success else { return nil }
    return box.value
}

/// Hands a result from the worker thread to the waiter; the semaphore orders the accesses.
private final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}
