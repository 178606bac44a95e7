import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import WardenConfig
import WardenJSON

/// `warden bans`: talks to the running gateway's admin listener.
struct BansCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bans",
        abstract: "List or lift the running gateway's address bans (through its admin listener).",
        subcommands: [List.self, Unban.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List addresses banned now, with the time left.")
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            let response = try AdminClient(options: options).send("GET", "/bans")
            guard response.status == 200, let document = try? JSONValue.parse(response.body), let bans = document["bans"]?.arrayValue else {
                printError("bans: unexpected answer from the gateway (\(response.status)): \(response.body)")
                throw ExitCode(WardenExit.checkFailed)
            }
            if bans.isEmpty { print("no address is banned") }
            for ban in bans {
                let text = { (key: String) in ban[key].map { $0.stringValue ?? $0.serialized } ?? "?" }
                print("\(text("address"))  \(text("remaining_seconds")) s left  (ban #\(text("bans")))")
            }
        }
    }

    struct Unban: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lift the ban on an address (IPv6: any address of the /64).")
        @OptionGroup var options: ConfigOptions
        @Argument(help: "The address to unban.") var address: String

        func validate() throws {
            guard IPAddress(address) != nil else { throw ValidationError("'\(address)' is not an IP address") }
        }

        func run() async throws {
            let response = try AdminClient(options: options).send("DELETE", "/bans/\(address)")
            switch response.status {
            case 200: print("unbanned \(address)")
            case 404: print("\(address) was not banned")
            default:
                printError("bans: the gateway answered \(response.status): \(response.body)")
                throw ExitCode(WardenExit.checkFailed)
            }
        }
    }
}

/// A minimal HTTP/1.1 client for the admin listener (loopback, no TLS): one request, `Connection: close`.
struct AdminClient {
    let address: ListenAddress

    init(options: ConfigOptions) throws {
        let deployment = try options.load()
        guard let address = ListenAddress(deployment.gateway.adminListen) else { throw ExitCode(WardenExit.usage) }
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
            throw failure("the gateway's admin listener at \(address) is not reachable (is warden-gateway running?)")
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

    private func failure(_ message: String) -> ExitCode {
        printError("bans: \(message)")
        return ExitCode(WardenExit.checkFailed)
    }
}
