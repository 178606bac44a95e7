import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A deliberately raw HTTP/1.1 client over a blocking socket with timeouts: tests need to see exact bytes,
/// stop reading mid-stream, and hang up at chosen moments, which high-level clients hide.
public final class TestHTTPConnection {
    private let socketFD: Int32
    private var buffer: [UInt8] = []
    public private(set) var closedByPeer = false

    public struct TimedOut: Error, CustomStringConvertible {
        public var description: String { "timed out waiting for the server" }
    }

    /// `receiveBuffer` shrinks the socket's receive buffer, for a client that reads slowly or never.
    public init(port: Int, timeout: Double = 10, receiveBuffer: Int32? = nil) throws {
        socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socketFD >= 0 else { throw POSIXError(.current) }
        if var size = receiveBuffer { setsockopt(socketFD, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(socketFD, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if result != 0 {
            let failure = POSIXErrorCode.current
            // A signal may interrupt a blocking connect that then completes on its own: wait for it and read its outcome.
            guard failure == .EINTR, let outcome = Self.finishInterruptedConnect(socketFD) else { throw POSIXError(failure) }
            if outcome != 0 { throw POSIXError(POSIXErrorCode(rawValue: outcome) ?? .EIO) }
        }
    }

    /// The result of a connect that `EINTR` cut short: 0 once connected, the socket's error otherwise; nil if it did
    /// not finish within a minute.
    private static func finishInterruptedConnect(_ descriptor: Int32) -> Int32? {
        var waiter = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
        var ready: Int32
        repeat { ready = poll(&waiter, 1, 60_000) } while ready < 0 && errno == EINTR
        guard ready == 1 else { return nil }
        var outcome: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &outcome, &length)
        return outcome
    }

    deinit { close(socketFD) }

    public func send(_ text: String) { send(bytes: Array(text.utf8)) }

    public func send(bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(socketFD, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 && errno == EINTR { continue }
            guard sent > 0 else { return }
            offset += sent
        }
    }

    /// Sends a request with a JSON body and the given extra headers.
    public func post(_ path: String, json: String, headers: [String: String] = [:]) {
        var request = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        send(request + "\r\n" + json)
    }

    public func get(_ path: String, headers: [String: String] = [:]) {
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        send(request + "\r\n")
    }

    /// Hangs up at once, as a client that goes away does.
    public func hangUp() { shutdown(socketFD, Int32(SHUT_RDWR)) }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        var count: Int
        repeat { count = chunk.withUnsafeMutableBytes { recv(socketFD, $0.baseAddress, $0.count, 0) } } while count < 0 && errno == EINTR
        if count == 0 { closedByPeer = true; return }
        if count < 0 { throw errno == EAGAIN || errno == EWOULDBLOCK ? TimedOut() as any Error : POSIXError(.current) }
        buffer.append(contentsOf: chunk[0..<count])
    }

    /// Reads until `marker` has arrived; returns everything up to and including it.
    public func read(through marker: String) throws -> String {
        let needle = Array(marker.utf8)
        while true {
            if let range = firstRange(of: needle) {
                let taken = Array(buffer[..<range.upperBound])
                buffer.removeFirst(range.upperBound)
                return String(decoding: taken, as: UTF8.self)
            }
            if closedByPeer { throw POSIXError(.ECONNRESET) }
            try fill()
        }
    }

    private func firstRange(of needle: [UInt8]) -> Range<Int>? {
        guard buffer.count >= needle.count else { return nil }
        for start in 0...(buffer.count - needle.count) where buffer[start] == needle[0] {
            if Array(buffer[start..<start + needle.count]) == needle { return start..<start + needle.count }
        }
        return nil
    }

    /// Reads until the peer closes; returns what arrived.
    public func readToClose() throws -> String {
        while !closedByPeer { try fill() }
        defer { buffer.removeAll() }
        return String(decoding: buffer, as: UTF8.self)
    }

    public struct Response: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var bodyBytes: [UInt8]
        public var body: String { String(decoding: bodyBytes, as: UTF8.self) }
    }

    /// Reads one response: the head, then a Content-Length body or a chunked body (de-chunked).
    public func readResponse() throws -> Response {
        let head = try read(through: "\r\n\r\n")
        let lines = head.components(separatedBy: "\r\n")
        let status = Int(lines[0].split(separator: " ")[1]) ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() where line.contains(":") {
            let parts = line.split(separator: ":", maxSplits: 1)
            headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces)
        }
        if let length = headers["content-length"].flatMap(Int.init) {
            while buffer.count < length { try fill(); if closedByPeer && buffer.count < length { throw POSIXError(.ECONNRESET) } }
            let body = Array(buffer[..<length])
            buffer.removeFirst(length)
            return Response(status: status, headers: headers, bodyBytes: body)
        }
        var body: [UInt8] = []
        while true {
            // "\r\n" is one Character in Swift, so trim it as bytes.
            let sizeLine = String(decoding: try read(through: "\r\n").utf8.dropLast(2), as: UTF8.self)
            let size = Int(sizeLine, radix: 16) ?? 0
            if size == 0 { _ = try read(through: "\r\n"); break }
            while buffer.count < size + 2 { try fill(); if closedByPeer && buffer.count < size + 2 { throw POSIXError(.ECONNRESET) } }
            body += buffer[..<size]
            buffer.removeFirst(size + 2)
        }
        return Response(status: status, headers: headers, bodyBytes: body)
    }
}

/// Sends one request on a new connection and reads the response.
public func request(port: Int, _ method: String, _ path: String, json: String? = nil, headers: [String: String] = [:]) throws -> TestHTTPConnection.Response {
    let connection = try TestHTTPConnection(port: port)
    var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if let json { text += "Content-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n" } else if method != "GET" { text += "Content-Length: 0\r\n" }
    for (name, value) in headers { text += "\(name): \(value)\r\n" }
    connection.send(text + "\r\n" + (json ?? ""))
    return try connection.readResponse()
}

/// Sends one request with any body (multipart forms, binary) on a new connection and reads the response.
public func request(port: Int, _ method: String, _ path: String, body: [UInt8], contentType: String,
                    headers: [String: String] = [:]) throws -> TestHTTPConnection.Response {
    let connection = try TestHTTPConnection(port: port)
    var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
    for (name, value) in headers { text += "\(name): \(value)\r\n" }
    connection.send(bytes: Array((text + "\r\n").utf8) + body)
    return try connection.readResponse()
}

/// SSE `data:` payloads of a stream body, in order.
public func events(_ body: String) -> [String] {
    body.components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { event in
        precondition(event.hasPrefix("data: "), "not an SSE data event: \(event)")
        return String(event.dropFirst(6))
    }
}

public func jsonObject(_ text: String) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
}

/// Polls until `condition` holds or `timeout` passes; used only to wait for counters that move asynchronously.
public func eventually(timeout: Duration = .seconds(10), _ condition: () throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return try condition()
}

/// Binds `descriptor` to a free loopback port and returns that port; `nil` when the bind fails.
public func bindLoopback(_ descriptor: Int32) -> Int? {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
    }
    return bound ? Int(UInt16(bigEndian: address.sin_port)) : nil
}

extension POSIXErrorCode {
    /// The code `errno` holds now (EIO for one Foundation does not name).
    static var current: POSIXErrorCode { POSIXErrorCode(rawValue: errno) ?? .EIO }
}

/// Runs a blocking test call (a socket read that waits for the server) on a thread of its own. An async test that
/// blocks holds one of the Swift concurrency pool's threads (two on a 2-core host), and the whole suite blocks many:
/// a server task the read waits on (a drain's polling) could then not run until the read gave up.
public func offThePool<T: Sendable>(_ body: @escaping () throws -> T) async throws -> T {
    nonisolated(unsafe) let body = body  // handed to one thread, used there alone
    return try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result(catching: body)) }.start()
    }
}
