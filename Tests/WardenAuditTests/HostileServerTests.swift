import Foundation
import Testing
@testable import WardenAudit
import WardenTestSupport

/// A loopback server that answers every connection with `behaviour`, on a thread of its own; closed when released.
final class HostileServer: @unchecked Sendable {
    let port: Int
    private let listener: Int32

    init(_ behaviour: @escaping @Sendable (Int32) -> Void) throws {
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard let port = bindLoopback(listener), listen(listener, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
        self.port = port
        let listener = self.listener
        Thread.detachNewThread {
            while true {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }
                Thread.detachNewThread {
                    // The request is read first, as a server does: a close with it unread would send a reset.
                    var request = [UInt8](repeating: 0, count: 65_536)
                    _ = request.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
                    behaviour(client)
                    close(client)
                }
            }
        }
    }

    deinit { shutdown(listener, Int32(SHUT_RDWR)); close(listener) }

    static func write(_ client: Int32, _ text: String) -> Bool {
        Array(text.utf8).withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } > 0
    }
}

/// What `warden status`, `warden bans` and `warden audit` meet when the server they ask is hostile or broken.
@Suite("the CLI's HTTP client against hostile servers: one deadline, a size limit, HTTP or nothing")
struct HostileServerTests {
    func exchange(_ server: HostileServer, timeout: Duration = .seconds(2), limit: Int = 1 << 20, statusLineOnly: Bool = false) -> (Result<HTTPGet.Answer, HTTPGet.Failure>, Duration) {
        let clock = ContinuousClock()
        var result: Result<HTTPGet.Answer, HTTPGet.Failure>!
        let elapsed = clock.measure {
            result = HTTPGet.exchange(host: "127.0.0.1", port: server.port, path: "/health", timeout: timeout, limit: limit, statusLineOnly: statusLineOnly)
        }
        return (result, elapsed)
    }

    func failure(_ result: Result<HTTPGet.Answer, HTTPGet.Failure>) -> String {
        if case .failure(let failure) = result { return failure.description }
        return "answered"
    }

    @Test("a server sending a byte now and then is cut off at the deadline, however long it keeps going")
    func slowDrip() throws {
        let server = try HostileServer { client in
            _ = HostileServer.write(client, "HTTP/1.1 200 OK\r\n")
            while HostileServer.write(client, "x") { usleep(300_000) }
        }
        let (result, elapsed) = exchange(server)
        #expect(failure(result).contains("not complete within"), "\(result)")
        #expect(elapsed < .seconds(10), "each byte used to restart a 5 s read timeout")
    }

    @Test("an endless body stops at the size limit; a held connection at the deadline; non-HTTP is not an answer")
    func endlessHeldAndGarbage() throws {
        let endless = try HostileServer { client in
            _ = HostileServer.write(client, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            let block = String(repeating: "y", count: 65_536)
            while HostileServer.write(client, block) {}
        }
        #expect(failure(exchange(endless).0).contains("answered more than 1 MiB"))
        let held = try HostileServer { _ in sleep(20) }
        let (silence, elapsed) = exchange(held, timeout: .seconds(1))
        #expect(failure(silence).contains("no answer within") && elapsed < .seconds(10))
        let garbage = try HostileServer { client in _ = HostileServer.write(client, "hello 200 world\r\n\r\n") }
        #expect(failure(exchange(garbage).0).contains("not an HTTP answer"))
        let oddCode = try HostileServer { client in _ = HostileServer.write(client, "HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n") }
        #expect(failure(exchange(oddCode).0).contains("not an HTTP answer"))
        let redirect = try HostileServer { client in _ = HostileServer.write(client, "HTTP/1.1 302 Found\r\nLocation: /sso\r\n\r\n") }
        if case .success(let answer) = exchange(redirect, statusLineOnly: true).0 { #expect(answer.status == 302) } else { Issue.record("a 302 is an answer") }
        let fine = try HostileServer { client in _ = HostileServer.write(client, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") }
        if case .success(let answer) = exchange(fine).0 { #expect(answer.status == 200 && answer.body == Array("ok".utf8)) } else { Issue.record("a plain answer") }
    }
}
