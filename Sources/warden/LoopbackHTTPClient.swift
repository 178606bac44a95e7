import ArgumentParser
import WardenConfig
#if canImport(Glibc)
import Glibc
#endif

/// A minimal HTTP/1.1 client for loopback listeners (the gateway's admin listener, vLLM's `/health` and `/metrics`):
/// one request, `Connection: close`, a 5-second timeout, `Content-Length` bodies.
struct AdminClient {
    let address: ListenAddress

    init(options: ConfigOptions) throws {
        let deployment = try options.load()
        guard let address = ListenAddress(deployment.gateway.adminListen) else { throw ExitCode(WardenExit.usage) }
        self.address = address
    }

    init(address: ListenAddress) {
        self.address = address
    }

    func send(_ method: String, _ path: String) throws -> (status: Int, body: String) {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var results: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(address.host, String(address.port), &hints, &results) == 0, let first = results else {
            throw failure("cannot resolve \(address)")
        }
        defer { freeaddrinfo(results) }
        let descriptor = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard descriptor >= 0 else { throw failure("cannot create a socket") }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connect(descriptor, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            throw failure("nothing answers at \(address) (is the service running?)")
        }
        let request = Array("\(method) \(path) HTTP/1.1\r\nHost: \(address)\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received += chunk[0..<count]
        }
        let text = String(decoding: received, as: UTF8.self)
        let parts = text.split(separator: "\r\n\r\n", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, let status = Int(text.split(separator: " ").dropFirst().first ?? "") else {
            throw failure("unreadable answer from \(address)")
        }
        return (status, String(parts[1]))
    }

    /// ``send(_:_:)`` for commands whose whole job is this request: a failure is printed and exits 1.
    func sendReporting(_ method: String, _ path: String) throws -> (status: Int, body: String) {
        do {
            return try send(method, path)
        } catch let error as Failure {
            printError("bans: \(error.description)")
            throw ExitCode(WardenExit.checkFailed)
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private func failure(_ message: String) -> Failure { Failure(description: message) }
}
