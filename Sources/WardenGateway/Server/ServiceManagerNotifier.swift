#if canImport(Glibc)
import Glibc
#endif

/// Tells systemd where the gateway is in its life, as `sd_notify(3)` does, for a `Type=notify` unit: `READY=1` once
/// both listeners are bound and SIGHUP and SIGTERM are trapped, so `systemctl start` returns only when the gateway
/// takes connections (and fails when it cannot bind), and a `systemctl reload` right after a start never meets
/// SIGHUP's default action, which would end the gateway for good (systemd counts a SIGHUP death as clean and does
/// not restart it). `STOPPING=1` when it drains. Without `$NOTIFY_SOCKET` (not started by systemd) it does nothing.
public struct ServiceManagerNotifier: Sendable {
    /// The datagram socket systemd listens on: an absolute path, or `@name` in the abstract namespace.
    public let socketPath: String?

    /// - Parameter socketPath: as `$NOTIFY_SOCKET` gives it; `nil` for a notifier that sends nothing.
    public init(socketPath: String?) {
        self.socketPath = socketPath
    }

    /// The socket systemd named in `$NOTIFY_SOCKET`, if any.
    public static func fromEnvironment() -> ServiceManagerNotifier {
        ServiceManagerNotifier(socketPath: getenv("NOTIFY_SOCKET").map { String(cString: $0) })
    }

    /// A notifier that sends nothing (in-process servers, tests).
    public static let none = ServiceManagerNotifier(socketPath: nil)

    /// Sends newline-separated `KEY=value` assignments in one datagram; `false` when there is no socket to send
    /// to or the send failed. Never blocks: a full queue drops the message, as systemd's own client does.
    @discardableResult
    public func notify(_ assignments: String) -> Bool {
        guard let socketPath, var address = Self.address(socketPath) else { return false }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + address.pathLength)
        var message = assignments
        let sent = message.withUTF8 { bytes in
            withUnsafePointer(to: &address.storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT), $0, length)
                }
            }
        }
        return sent == message.utf8.count
    }

    /// `sockaddr_un` for an absolute path (with its terminating NUL) or an abstract `@name` (exactly its bytes,
    /// the `@` read as NUL); `nil` for anything else, or a name too long for `sun_path`.
    static func address(_ path: String) -> (storage: sockaddr_un, pathLength: Int)? {
        var bytes = Array(path.utf8)
        switch bytes.first {
        case UInt8(ascii: "/"): bytes.append(0)
        case UInt8(ascii: "@"): bytes[0] = 0
        default: return nil
        }
        var storage = sockaddr_un()
        storage.sun_family = sa_family_t(AF_UNIX)
        guard bytes.count > 1, bytes.count <= MemoryLayout.size(ofValue: storage.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &storage.sun_path) { $0.copyBytes(from: bytes) }
        return (storage, bytes.count)
    }
}
