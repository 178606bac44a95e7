import ArgumentParser
import WardenAudit
import WardenConfig

/// Requests to loopback listeners (the gateway's admin listener, vLLM's `/health` and `/metrics`): one request,
/// `Connection: close`, the whole exchange within 5 seconds and 8 MiB (``HTTPGet``).
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
        switch HTTPGet.exchange(host: address.host, port: address.port, method: method, path: path, timeout: .seconds(5)) {
        case .success(let answer):
            return (answer.status, String(decoding: answer.body, as: UTF8.self))
        case .failure(let failure):
            throw Failure(description: "no usable answer from \(address): \(failure.description) (is the service running?)")
        }
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
}
