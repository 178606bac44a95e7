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

    /// `WatchdogSec=`: systemd expects `WATCHDOG=1` at least this often (sent every quarter of it); nil when it is off.
    public let watchdogTimeout: Duration?

    /// - Parameter socketPath: as `$NOTIFY_SOCKET` gives it; `nil` for a notifier that sends nothing.
    public init(socketPath: String?, watchdogTimeout: Duration? = nil) {
        self.socketPath = socketPath
        self.watchdogTimeout = socketPath == nil ? nil : watchdogTimeout
    }

    /// The socket systemd named in `$NOTIFY_SOCKET`, if any, and its watchdog (`$WATCHDOG_USEC`, when
    /// `$WATCHDOG_PID` is absent or this process), as `sd_watchdog_enabled(3)` reads them.
    public static func fromEnvironment(_ value: (String) -> String? = { getenv($0).map { String(cString: $0) } },
                                       processID: Int32 = getpid()) -> ServiceManagerNotifier {
        let forThisProcess = value("WATCHDOG_PID").map { Int32($0) == processID } ?? true
        let timeout = forThisProcess ? value("WATCHDOG_USEC").flatMap(Int64.init).flatMap { $0 > 0 ? Duration.microseconds($0) : nil } : nil
        return ServiceManagerNotifier(socketPath: value("NOTIFY_SOCKET"), watchdogTimeout: timeout)
    }

    /// A notifier that sends nothing (in-process servers, tests).
    public static let none = ServiceManagerNotifier(socketPath: nil)

    /// Why a notification did not reach systemd.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Sends newline-separated `KEY=value` assignments in one datagram; does nothing without a socket. Waits up to a
    /// second for room in systemd's queue (a container's `net.unix.max_dgram_qlen` is 10), as `sd_notify` waits: a
    /// lost `READY=1` leaves the unit activating until `TimeoutStartSec=` kills it. `waitingForRoom: false` never
    /// waits (a watchdog ping from an event loop: the next one follows soon).
    public func notify(_ assignments: String, waitingForRoom: Bool = true) throws(Failure) {
        guard let socketPath else { return }
        guard var address = Self.address(socketPath) else {
            throw Failure(description: "$NOTIFY_SOCKET '\(socketPath)' is neither an absolute path nor an @abstract name that fits sun_path")
        }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let flags = Int32(MSG_NOSIGNAL) | (waitingForRoom ? 0 : Int32(MSG_DONTWAIT))
        let length = socklen_t(MemoryLayout<sa_family_t>.size + address.pathLength)
        var message = assignments
        var sent = -1
        repeat {
            sent = message.withUTF8 { bytes in
                withUnsafePointer(to: &address.storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(descriptor, bytes.baseAddress, bytes.count, flags, $0, length)
                    }
                }
            }
        } while sent < 0 && errno == EINTR
        guard sent == message.utf8.count else {
            throw Failure(description: "sending to \(socketPath): \(sent < 0 ? String(cString: strerror(errno)) : "a short write")")
        }
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
