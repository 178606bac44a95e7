#if canImport(Glibc)
import Glibc
#endif
import WardenConfig
import WardenPreflight
import WardenSystemd

extension LinuxHost: AuditHost {
    public func commandLine(pid: Int) -> [String]? {
        guard let bytes = readFile("/proc/\(pid)/cmdline", limit: 1 << 20), !bytes.isEmpty else { return nil }
        return nulSeparated(bytes)
    }

    public func processEnvironment(pid: Int) -> [String: String]? {
        guard access("/proc/\(pid)/environ", R_OK) == 0, let bytes = readFile("/proc/\(pid)/environ", limit: 1 << 20) else { return nil }
        return environmentDictionary(nulSeparated(bytes))
    }

    public func socketInodes(pid: Int) -> Set<UInt64>? {
        guard let descriptors = listDirectory("/proc/\(pid)/fd") else { return nil }
        var inodes: Set<UInt64> = []
        var buffer = [CChar](repeating: 0, count: 256)
        for descriptor in descriptors {
            let count = readlink("/proc/\(pid)/fd/\(descriptor)", &buffer, buffer.count - 1)
            guard count > 0 else { continue }
            let target = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if target.hasPrefix("socket:["), let inode = UInt64(target.dropFirst(8).dropLast()) { inodes.insert(inode) }
        }
        return inodes
    }

    public var commands: any CommandRunner { ProcessRunner() }

    public func httpGet(host: String, port: Int, path: String, timeout: Duration) -> ProbeResult {
        HTTPGet.status(host: host, port: port, path: path, timeout: timeout)
    }
}

/// Splits `/proc` NUL-separated data into strings (the trailing NUL ends the last one).
func nulSeparated(_ bytes: [UInt8]) -> [String] {
    bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        .reversed().drop { $0.isEmpty }.reversed()
}

/// `NAME=value` entries as a dictionary; the last assignment of a name wins, as in a shell.
func environmentDictionary<S: Sequence>(_ entries: S) -> [String: String] where S.Element: StringProtocol {
    var environment: [String: String] = [:]
    for entry in entries {
        guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else { continue }
        environment[String(entry[..<equals])] = String(entry[entry.index(after: equals)...])
    }
    return environment
}
