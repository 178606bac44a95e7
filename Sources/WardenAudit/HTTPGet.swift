#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking HTTP/1.1 client for what the CLI asks of local servers: whether an audit probe's route answers
/// without a key (the status line is enough), and `warden status` / `warden bans` reading vLLM and the gateway's
/// admin listener. Whatever the server does, one exchange ends within its timeout — connect, send and every read
/// count against one deadline, so a server sending a byte a second cannot stretch it — and holds at most `limit`
/// bytes of answer.
public enum HTTPGet {
    public struct Answer: Sendable {
        public var status: Int
        /// Everything after the head, as it came (no chunked decoding: the callers read lengths or lines).
        public var body: [UInt8]
    }

    /// One request with `Connection: close`; `statusLineOnly` stops reading once the status line is in.
    public static func exchange(host: String, port: Int, method: String = "GET", path: String, timeout: Duration,
                                limit: Int = 8 << 20, statusLineOnly: Bool = false) -> Result<Answer, Failure> {
        let deadline = ContinuousClock.now + timeout
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var results: UnsafeMutablePointer<addrinfo>?
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        guard getaddrinfo(bare, String(port), &hints, &results) == 0, let address = results else { return .failure(.init("cannot resolve \(host)")) }
        defer { freeaddrinfo(results) }
        let descriptor = socket(address.pointee.ai_family, address.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue), 0)
        guard descriptor >= 0 else { return .failure(.init(String(cString: strerror(errno)))) }
        defer { close(descriptor) }
        if connect(descriptor, address.pointee.ai_addr, address.pointee.ai_addrlen) != 0 {
            guard errno == EINPROGRESS else { return .failure(.init("connection refused or unreachable: \(String(cString: strerror(errno)))")) }
            guard wait(descriptor, for: POLLOUT, until: deadline) else { return .failure(.init("connect timed out")) }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &error, &length)
            if error != 0 { return .failure(.init("connection refused or unreachable: \(String(cString: strerror(error)))")) }
        }
        let hostField = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        let request = Array("\(method) \(path) HTTP/1.1\r\nHost: \(hostField):\(port)\r\nUser-Agent: warden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            guard wait(descriptor, for: POLLOUT, until: deadline) else { return .failure(.init("timed out sending the request")) }
            let count = request[sent...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count < 0, errno == EAGAIN || errno == EINTR { continue }
            guard count > 0 else { return .failure(.init("send failed: \(String(cString: strerror(errno)))")) }
            sent += count
        }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while !(statusLineOnly && received.contains(UInt8(ascii: "\n"))) {
            guard received.count < (statusLineOnly ? 8192 : limit) else {
                if statusLineOnly { break }
                return .failure(.init("answered more than \(limit >> 20) MiB"))
            }
            guard wait(descriptor, for: POLLIN, until: deadline) else {
                return .failure(.init(received.isEmpty ? "no answer within \(timeout)" : "answer not complete within \(timeout)"))
            }
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0, errno == EAGAIN || errno == EINTR { continue }
            // A reset after an answer arrived ends it, as a close does (a server that closes with our request unread).
            if count == 0 || (count < 0 && errno == ECONNRESET && !received.isEmpty) { break }
            guard count > 0 else { return .failure(.init("read failed: \(String(cString: strerror(errno)))")) }
            received += chunk[0..<count]
        }
        return answer(received, statusLineOnly: statusLineOnly)
    }

    /// The status code and body of what arrived: an HTTP/1.x status line with a code from 100 to 599, else a failure.
    private static func answer(_ received: [UInt8], statusLineOnly: Bool) -> Result<Answer, Failure> {
        guard !received.isEmpty else { return .failure(.init("connection closed without an answer")) }
        let lineEnd = received.firstIndex(of: UInt8(ascii: "\n")) ?? received.count
        let line = String(decoding: received[..<lineEnd].filter { $0 != UInt8(ascii: "\r") }, as: UTF8.self)
        let fields = line.split(separator: " ")
        guard fields.count >= 2, fields[0].hasPrefix("HTTP/1."), fields[1].count == 3, let code = Int(fields[1]), (100...599).contains(code) else {
            return .failure(.init("not an HTTP answer: \(line.prefix(60))"))
        }
        guard !statusLineOnly else { return .success(Answer(status: code, body: [])) }
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let headEnd = (0...max(0, received.count - 4)).first(where: { received.count >= 4 && received[$0..<$0 + 4].elementsEqual(separator) }) else {
            return .failure(.init("answer ended inside its head"))
        }
        return .success(Answer(status: code, body: Array(received[(headEnd + 4)...])))
    }

    /// Waits for `events` on `descriptor` until `deadline`; false when the time is up.
    private static func wait(_ descriptor: Int32, for events: Int32, until deadline: ContinuousClock.Instant) -> Bool {
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { return false }
            let milliseconds = Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
            var poller = pollfd(fd: descriptor, events: Int16(events), revents: 0)
            let ready = poll(&poller, 1, milliseconds)
            if ready > 0 { return true }
            if ready < 0, errno != EINTR { return true }  // the next call reports the socket's own error
        }
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// An audit probe: the route's status code, or why there is none.
    static func status(host: String, port: Int, path: String, timeout: Duration) -> ProbeResult {
        switch exchange(host: host, port: port, path: path, timeout: timeout, statusLineOnly: true) {
        case .success(let answer): .status(answer.status)
        case .failure(let failure): .failed(failure.description)
        }
    }
}
