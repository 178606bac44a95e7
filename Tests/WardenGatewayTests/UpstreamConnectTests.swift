import Foundation
import Testing
import VLLMSim
import WardenTestSupport
@testable import WardenGateway
#if canImport(Glibc)
import Glibc
#endif

@Suite("new connections: to vLLM without waiting for the handshake, and one public listener per event loop")
struct UpstreamConnectTests {
    @Test("vLLM closing every connection after its response: each request goes out on a new one, streamed or not, and all complete")
    func everyRequestOnANewConnection() async throws {
        try await withGateway(simulator: SimulatorConfiguration(servedModelName: "qwen", keepAlive: false)) { harness in
            let connection = try TestHTTPConnection(port: harness.port)
            for index in 0..<6 {
                let stream = index % 2 == 0
                connection.post("/v1/completions", json: #"{"prompt":"k","max_tokens":2,"stream":\#(stream)}"#, headers: harness.bearer)
                let response = try connection.readResponse()
                #expect(response.status == 200)
                if stream { #expect(events(response.body).last == "[DONE]") }
            }
            #expect(try harness.upstreamRequests() == 6)
            #expect(try harness.accessRecords().allSatisfy { $0["status"] as? Int == 200 })
        }
    }

    @Test("vLLM refusing connections: 503 with Retry-After that names the refusal; another gateway's vLLM is unaffected")
    func refusedThenBack() async throws {
        try await withGateway { harness in
            let closedPort = try freeLoopbackPort()
            var configuration = harness.gateway.core.configuration
            configuration.upstreamPort = closedPort
            configuration.listenPort = 0
            let refusing = try GatewayServer(configuration: configuration, accessLog: MemorySink())
            let (port, _) = try await refusing.start()
            let refused = try request(port: port, "POST", "/v1/completions", json: #"{"prompt":"x"}"#, headers: harness.bearer)
            #expect(refused.status == 503)
            #expect(refused.headers["retry-after"] == "5")
            #expect(refused.body.contains("Connection refused"), "the reason names the refusal: \(refused.body)")
            await refusing.drain()
            // The harness's gateway, in front of a live vLLM, is untouched by the other one's failures.
            #expect(try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x"}"#, headers: harness.bearer).status == 200)
        }
    }

    @Test("a vLLM that never completes the handshake (its listen queue full) fails the request with 503 at the connect timeout")
    func handshakeNeverCompletes() async throws {
        let stuck = try StuckListener()
        defer { stuck.close() }
        try await withGateway(configure: {
            $0.upstreamPort = stuck.port
            $0.upstreamConnectTimeout = .milliseconds(300)
        }) { harness in
            let started = ContinuousClock.now
            let response = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"x"}"#, headers: harness.bearer)
            #expect(response.status == 503)
            #expect(response.body.contains("connect timed out after 300 ms"), "\(response.body)")
            #expect(ContinuousClock.now - started >= .milliseconds(300))
            #expect(harness.gateway.inFlight == 0)
            #expect(harness.gateway.leasesHeld == 0)
        }
    }

    @Test("draining closes every public listener: no new connection is accepted on any event loop")
    func drainClosesEveryListener() async throws {
        try await withGateway { harness in
            // Connections spread over the listeners (one per loop): all are served.
            for _ in 0..<16 {
                #expect(try request(port: harness.port, "GET", "/v1/models", headers: harness.bearer).status == 200)
            }
            harness.gateway.beginDrain()
            let allRefused = try await eventually {
                (0..<20).allSatisfy { _ in (try? TestHTTPConnection(port: harness.port)) == nil }
            }
            #expect(allRefused, "a listener left open would take about half of these")
        }
    }
}

/// A free loopback port with nothing listening on it (connections to it are refused).
private func freeLoopbackPort() throws -> Int {
    let listener = try StuckListener(fill: false)
    listener.close()
    return listener.port
}

/// A listening socket that never accepts, its queue of length 0 filled by one connection: the kernel drops every
/// further SYN, so a connection to it neither completes nor fails until the connecting side gives up.
private final class StuckListener {
    let port: Int
    private var descriptors: [Int32] = []

    init(fill: Bool = true) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        descriptors.append(listener)
        guard let port = bindLoopback(listener), listen(listener, 0) == 0 else { throw POSIXError(.EADDRNOTAVAIL) }
        self.port = port
        guard fill else { return }
        let filler = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        descriptors.append(filler)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(filler, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    func close() {
        descriptors.forEach { _ = Glibc.close($0) }
        descriptors = []
    }
}
