import Foundation
@testable import WardenGateway
#if canImport(Glibc)
import Glibc
#endif

/// The receiving end of `$NOTIFY_SOCKET`, as systemd holds it: a datagram socket that collects what a process sends
/// with `sd_notify`. `path` is what goes into the process's environment (`@name` for the abstract namespace).
final class NotifySocket {
    let path: String
    private let descriptor: Int32
    private(set) var messages: [String] = []

    init(path: String) throws {
        self.path = path
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0, var address = ServiceManagerNotifier.address(path) else { throw POSIXError(.EINVAL) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + address.pathLength)
        let bound = withUnsafePointer(to: &address.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0 else {
            close(descriptor)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
    }

    deinit {
        close(descriptor)
        if path.hasPrefix("/") { unlink(path) }
    }

    /// Reads every datagram waiting, without blocking, and returns all received so far.
    @discardableResult
    func receive() -> [String] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            guard count > 0 else { return messages }
            messages.append(String(decoding: buffer[..<count], as: UTF8.self))
        }
    }

    /// Whether some datagram received so far assigns `assignment` (`READY=1`) on a line of its own.
    func received(_ assignment: String) -> Bool {
        receive().contains { $0.split(separator: "\n").contains(Substring(assignment)) }
    }
}
