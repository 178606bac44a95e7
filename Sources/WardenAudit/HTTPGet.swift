#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking HTTP/1.1 `GET` that reads only the status line: enough to learn whether a route answers
/// without a key. Connect, send and receive are each bounded by the timeout.
enum HTTPGet {
    static func status(host: String, port: Int, path: String, timeout: Duration) -> ProbeResult {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var results: UnsafeMutablePointer<addrinfo>?
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        guard getaddrinfo(bare, String(port), &hints, &results) == 0, let address = results else { return .failed("cannot resolve \(host)") }
        defer { freeaddrinfo(results) }
        let descriptor = socket(address.pointee.ai_family, address.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return .failed(String(cString: strerror(errno))) }
        defer { close(descriptor) }
        let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        guard let error = connect(descriptor, address, milliseconds: milliseconds) else {
            var limit = timeval(tv_sec: Int(milliseconds / 1000), tv_usec: Int(milliseconds % 1000) * 1000)
            setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            let request = Array("GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUser-Agent: warden-audit\r\nConnection: close\r\n\r\n".utf8)
            guard request.withUnsafeBytes({ send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
                return .failed("send failed: \(String(cString: strerror(errno)))")
            }
            return readStatus(descriptor)
        }
        return .failed(error)
    }

    /// Non-blocking connect bounded by `milliseconds`; `nil` on success, else why not.
    private static func connect(_ descriptor: Int32, _ address: UnsafeMutablePointer<addrinfo>, milliseconds: Int32) -> String? {
        let flags = fcntl(descriptor, F_GETFL)
        _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(descriptor, F_SETFL, flags) }
        if Glibc.connect(descriptor, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 { return nil }
        guard errno == EINPROGRESS else { return String(cString: strerror(errno)) }
        var poller = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
        guard poll(&poller, 1, milliseconds) == 1 else { return "connect timed out" }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length)
        return error == 0 ? nil : String(cString: strerror(error))
    }

    /// Reads until the status line is complete and returns its code.
    private static func readStatus(_ descriptor: Int32) -> ProbeResult {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1024)
        while !received.contains(UInt8(ascii: "\n")), received.count < 8192 {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return .failed(count == 0 ? "connection closed without an answer" : "no answer: \(String(cString: strerror(errno)))") }
            received += chunk.prefix(count)
        }
        let line = String(decoding: received.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let fields = line.split(separator: " ")
        guard fields.count >= 2, fields[0].hasPrefix("HTTP/"), let code = Int(fields[1]) else { return .failed("not an HTTP answer: \(line.prefix(60))") }
        return .status(code)
    }
}
