import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import VLLMSim
import WardenNIOSupport
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

    @Test("vLLM refusing connections: 503 with Retry-After naming the refusal, nothing charged, no upstream latency recorded")
    func refused() async throws {
        try await withGateway { harness in
            var configuration = harness.gateway.core.configuration
            configuration.upstreamPort = try freeLoopbackPort()
            configuration.listenPort = 0
            let accessLog = MemorySink()
            let refusing = try GatewayServer(configuration: configuration, accessLog: accessLog)
            let (port, _) = try await refusing.start()
            for body in [#"{"prompt":"x"}"#, #"{"prompt":"x","stream":true}"#] {
                let refused = try request(port: port, "POST", "/v1/completions", json: body, headers: harness.bearer)
                #expect(refused.status == 503)
                #expect(refused.headers["retry-after"] == "5")
                #expect(refused.body.contains("Connection refused"), "the reason names the refusal: \(refused.body)")
            }
            let records = try accessLog.contents.map { try jsonObject($0) }
            #expect(records.count == 2)
            #expect(records.allSatisfy { $0["tokens_charged"] as? Int == 0 && $0["decision"] as? String == "upstream_unavailable" })
            #expect(refusing.metricsText.contains("warden_upstream_latency_seconds_count 0"), "no upstream wait for a request that never left")
            await refusing.drain()
        }
    }

    @Test("a vLLM that never completes the handshake (its listen queue full) fails the request with 503 at the connect timeout, nothing charged")
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
            #expect(try harness.accessRecords().first?["tokens_charged"] as? Int == 0)
            #expect(harness.gateway.inFlight == 0)
            #expect(harness.gateway.leasesHeld == 0)
        }
    }

    @Test("a client that hangs up while the handshake is pending leaves nothing behind: no request in flight, no lease, nothing charged")
    func clientLeavesDuringHandshake() async throws {
        let stuck = try StuckListener()
        defer { stuck.close() }
        try await withGateway(configure: {
            $0.upstreamPort = stuck.port
            // 30 s: the request must still be waiting when a loaded machine gets round to looking (CI once took
            // over 5 s), and the release is judged well inside it.
            $0.upstreamConnectTimeout = .seconds(30)
        }) { harness in
            for stream in [false, true] {
                let client = try TestHTTPConnection(port: harness.port)
                client.post("/v1/completions", json: #"{"prompt":"x","stream":\#(stream)}"#, headers: harness.bearer)
                #expect(try await eventually(timeout: .seconds(20)) { harness.gateway.inFlight == 1 }, "the request waits on the handshake")
                client.hangUp()
                #expect(try await eventually(timeout: .seconds(10)) { harness.gateway.inFlight == 0 && harness.gateway.leasesHeld == 0 },
                        "released at once, not at the 30 s connect timeout")
            }
            #expect(try harness.accessRecords().map { $0["tokens_charged"] as? Int } == [0, 0])
        }
    }

    @Test("a request body that outlasts the connect timeout on a connected but unread socket is not a connect timeout")
    func slowBodyIsNotAConnectTimeout() async throws {
        let silent = try StuckListener(fill: false)
        defer { silent.close() }
        try await withGateway(configure: {
            $0.upstreamPort = silent.port
            $0.upstreamConnectTimeout = .milliseconds(200)
            $0.upstreamReadTimeout = .milliseconds(1500)
            $0.maxBodyBytes = 16 << 20
        }) { harness in
            // 12 MiB: more than the kernel buffers of a connection nobody reads, so the write is still pending when
            // the connect timeout passes; the handshake did complete (the listener's queue had room).
            let prompt = String(repeating: "a", count: 12 << 20)
            let response = try request(port: harness.port, "POST", "/v1/completions", json: #"{"prompt":"\#(prompt)"}"#, headers: harness.bearer)
            #expect(response.status == 503)
            #expect(response.body.contains("read timeout"), "\(response.body)")
            #expect(!response.body.contains("connect timed out"))
        }
    }

    @Test("one listener per event loop, and draining closes them all: no new connection is accepted on any loop")
    func drainClosesEveryListener() async throws {
        try await withGateway { harness in
            var configuration = harness.gateway.core.configuration
            configuration.listenPort = 0
            let loops = MultiThreadedEventLoopGroup(numberOfThreads: 3)
            let gateway = try GatewayServer(configuration: configuration, accessLog: MemorySink(), group: loops)
            let (port, _) = try await gateway.start()
            #expect(gateway.publicListeners == 3)
            // Connections spread over the listeners: all are served.
            for _ in 0..<16 {
                #expect(try request(port: port, "GET", "/v1/models", headers: harness.bearer).status == 200)
            }
            gateway.beginDrain()
            let allRefused = try await eventually {
                (0..<30).allSatisfy { _ in (try? TestHTTPConnection(port: port)) == nil }
            }
            #expect(allRefused, "a listener left open would take a third of these")
            await gateway.drain()
            try await loops.shutdownGracefully()
        }
    }
}

@Suite("accepted connections")
struct AcceptedConnectionTests {
    @Test("accepted connections have TCP_NODELAY, inherited from the listener (no option is applied per connection)")
    func noDelayInherited() async throws {
        let seen = NIOLockedValueBox<Int?>(nil)
        let server = try await ConnectionRegistry().httpServerBootstrap(group: MultiThreadedEventLoopGroup.singleton) { pipeline in
            try pipeline.addHandler(NoDelayProbe(seen: seen))
        }.bind(host: "127.0.0.1", port: 0).get()
        let client = try TestHTTPConnection(port: try #require(server.localAddress?.port))
        #expect(try await eventually { seen.withLockedValue { $0 } != nil })
        #expect(seen.withLockedValue { $0 } == 1)
        _ = client
        try await server.close()
    }

    private final class NoDelayProbe: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let seen: NIOLockedValueBox<Int?>
        init(seen: NIOLockedValueBox<Int?>) { self.seen = seen }
        func channelActive(context: ChannelHandlerContext) {
            let value = try? context.channel.syncOptions?.getOption(.tcpOption(.tcp_nodelay))
            seen.withLockedValue { $0 = value.map { Int($0) } ?? -1 }
        }
    }
}

/// A free loopback port with nothing listening on it (connections to it are refused).
private func freeLoopbackPort() throws -> Int {
    let listener = try StuckListener(fill: false)
    listener.close()
    return listener.port
}

/// A listening socket that never accepts. Filled, its queue of length 0 holds one connection and the kernel drops
/// every further SYN, so a connection to it neither completes nor fails until the connecting side gives up; not
/// filled, connections complete their handshake (64 fit) and what they send is never read.
private final class StuckListener {
    let port: Int
    private var descriptors: [Int32] = []

    init(fill: Bool = true) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        descriptors.append(listener)
        guard let port = bindLoopback(listener), listen(listener, fill ? 0 : 64) == 0 else { throw POSIXError(.EADDRNOTAVAIL) }
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
