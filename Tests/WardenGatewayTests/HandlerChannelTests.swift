import Foundation
import Logging
import VLLMSim
import WardenTestSupport
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import WardenConfig
@testable import WardenGateway

/// The client-side handler in an `EmbeddedChannel`: refusals and `100 Continue` without a socket or vLLM.
@Suite("gateway HTTP handler in an EmbeddedChannel")
struct HandlerChannelTests {
    final class Fixture {
        let channel = EmbeddedChannel()
        let accessLog = MemorySink()
        let key: String
        let core: GatewayCore
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("handler-\(UUID().uuidString)")

        init() throws {
            let store = try KeyStore(path: scratch.appendingPathComponent("keys.sqlite").path, create: true)
            key = try store.create(name: "embedded").0.text
            var deployment = Deployment(vllm: .init(model: "/models/qwen", servedModelName: "qwen"))
            deployment.gateway.keyStore = store.path
            let configuration = try GatewayConfiguration(deployment: deployment, deploymentPath: nil, upstreamKey: "k")
            let policy = GatewayPolicy(keys: try store.loadTable(), gateway: configuration.routes)
            core = GatewayCore(configuration: configuration, state: GatewayState(policy: policy), metrics: GatewayMetrics(),
                               accessLog: accessLog, logger: Logger(label: "test"))
            try channel.pipeline.syncOperations.addHandler(GatewayHTTPHandler(core: core))
            try channel.connect(to: SocketAddress(ipAddress: "192.0.2.10", port: 40_000)).wait()
        }

        deinit {
            _ = try? channel.finish()
            try? FileManager.default.removeItem(at: scratch)
        }

        /// The request as bytes: its head (with a `Content-Length` for `body` when it has none), then the body. A
        /// head sent without its end declares its length and stops there.
        func send(_ head: HTTPRequestHead, body: String? = nil, end: Bool = true) throws {
            var text = "\(head.method.rawValue) \(head.uri) HTTP/1.1\r\n"
            for (name, value) in head.headers { text += "\(name): \(value)\r\n" }
            if let body, head.headers["content-length"].isEmpty { text += "content-length: \(body.utf8.count)\r\n" }
            text += "\r\n" + (end ? body ?? "" : "")
            try channel.writeInbound(ByteBuffer(string: text))
        }

        /// A keyed completion request whose body stops after five bytes; `meanwhile` runs before the rest arrives.
        func sendPausingInBody(meanwhile: () throws -> Void) throws {
            let body = #"{"prompt":"x","max_tokens":1}"#
            var text = "POST /v1/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer \(key)\r\n"
            text += "Content-Length: \(body.utf8.count)\r\n\r\n" + body.prefix(5)
            try channel.writeInbound(ByteBuffer(string: text))
            try meanwhile()
            try channel.writeInbound(ByteBuffer(string: String(body.dropFirst(5))))
        }

        /// The next response, parsed from the bytes the handler wrote: head, and the body by its length or chunks.
        func response() throws -> (head: HTTPResponseHead, body: String) {
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { written += Array(buffer.readableBytesView) }
            guard let parsed = RawResponse.parse(&written) else { throw POSIXError(.EIO) }
            return parsed
        }

        private var written: [UInt8] = []
    }

    static func head(_ headers: [(String, String)], method: HTTPMethod = .POST, uri: String = "/v1/completions") -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    @Test("a missing key is answered 401 in OpenAI's shape with a request id, and logged; a client's id is echoed")
    func unauthorized() throws {
        let fixture = try Fixture()
        try fixture.send(Self.head([("Host", "gw"), ("X-Request-Id", "mine-1")]), body: #"{"prompt":"x"}"#)
        let (head, body) = try fixture.response()
        #expect(head.status == .unauthorized)
        #expect(head.headers.first(name: "x-request-id") == "mine-1")
        #expect(isOpenAIError(body))
        #expect(fixture.accessLog.contents.first?.contains(#""decision":"rejected:auth_missing""#) == true)
        #expect(fixture.accessLog.contents.first?.contains(#""client_request_id":"mine-1","client":"192.0.2.10""#) == true)
    }

    @Test("routes outside the allow-list get 404 with the route counted as `other`; a refused body closes nothing else")
    func notAllowed() throws {
        let fixture = try Fixture()
        try fixture.send(Self.head([("Host", "gw"), ("Authorization", "Bearer \(fixture.key)")], uri: "/tokenize"), body: "{}")
        #expect(try fixture.response().head.status == .notFound)
        #expect(fixture.channel.isActive, "a keep-alive connection stays open after a refusal")
    }

    @Test("Expect: 100-continue: a valid head is invited before the body; an invalid one is refused at once and closed; a health probe needs no key")
    func expectContinue() throws {
        let invited = try Fixture()
        try invited.send(Self.head([("Host", "gw"), ("Authorization", "Bearer \(invited.key)"), ("Expect", "100-continue"),
                                    ("Content-Length", "14")]), end: false)
        #expect(try invited.response().head.status == .continue)
        let refused = try Fixture()
        try refused.send(Self.head([("Host", "gw"), ("Expect", "100-continue"), ("Content-Length", "14")]), end: false)
        let (head, _) = try refused.response()
        #expect(head.status == .unauthorized)
        #expect(head.headers.first(name: "connection") == "close")
        let oversized = try Fixture()
        try oversized.send(Self.head([("Host", "gw"), ("Authorization", "Bearer \(oversized.key)"), ("Expect", "100-continue"),
                                      ("Content-Length", "999999999999999999")]), end: false)
        let (tooLarge, _) = try oversized.response()
        #expect(tooLarge.status == .payloadTooLarge, "refused instead of invited")
        #expect(tooLarge.headers.first(name: "connection") == "close")
        #expect(oversized.accessLog.contents.first?.contains(#""decision":"rejected:body_too_large""#) == true)
        // A health probe needs no key, with an expectation or without: invited and answered, not refused with 401.
        let probe = try Fixture()
        try probe.send(Self.head([("Host", "gw"), ("Expect", "100-continue")], method: .GET, uri: "/health"))
        #expect(try probe.response().head.status == .continue)
        let (health, _) = try probe.response()
        #expect(health.status == (probe.core.state.isReady ? .ok : .serviceUnavailable))
        #expect(probe.channel.isActive)
    }

    @Test("a drain that begins while a request's body is still arriving refuses it with 503 when the body ends")
    func drainDuringBody() throws {
        let fixture = try Fixture()
        try fixture.sendPausingInBody { fixture.core.state.draining.store(true, ordering: .relaxed) }
        let (head, response) = try fixture.response()
        #expect(head.status == .serviceUnavailable, "\(response)")
        #expect(head.headers.first(name: "connection") == "close")
    }

    @Test("a key revoked (and the keys reloaded) while a request's body is still arriving is refused with 401 when the body ends")
    func revokedDuringBody() throws {
        let fixture = try Fixture()
        try fixture.sendPausingInBody {
            let store = try KeyStore(path: fixture.scratch.appendingPathComponent("keys.sqlite").path, create: false)
            try store.revoke(publicID: try #require(APIKeyToken(Substring(fixture.key))).publicID)
            fixture.core.state.replacePolicy(fixture.core.state.policy.replacingKeys(try store.loadTable()))
        }
        let (head, response) = try fixture.response()
        #expect(head.status == .unauthorized, "\(response)")
    }

    @Test("an unsupported expectation is 417 and a request without Host is 400, both before any key check")
    func framing() throws {
        let fixture = try Fixture()
        try fixture.send(Self.head([("Host", "gw"), ("Expect", "magic")]), body: "{}")
        #expect(try fixture.response().head.status == .expectationFailed)
        try fixture.send(Self.head([("Authorization", "Bearer \(fixture.key)")]), body: "{}")
        let (head, body) = try fixture.response()
        #expect(head.status == .badRequest)
        #expect(body.contains("missing_host"))
    }
}

@Suite("gateway: health probes on the public listener")
struct PublicHealthTests {
    @Test("GET /health and /ping answer 200 with an empty body and no key while ready, 503 once draining; /version is refused; none reach vLLM")
    func health() async throws {
        try await withGateway { harness in
            #expect(await probeUntil(harness) { $0 == nil })
            let before = try harness.upstreamRequests()
            let health = try request(port: harness.port, "GET", "/health")
            #expect(health.status == 200)
            #expect(health.body.isEmpty)
            #expect(try request(port: harness.port, "GET", "/ping").status == 200)
            #expect(try request(port: harness.port, "POST", "/ping", json: "{}").status == 200)
            #expect(try request(port: harness.port, "GET", "/version").status == 401, "no key: refused like any other route")
            #expect(try request(port: harness.port, "GET", "/version", headers: harness.bearer).status == 404, "not allow-listed")
            #expect(try request(port: harness.port, "GET", "/health/../v1/models").status == 400)
            #expect(try harness.upstreamRequests() == before)
            // A keep-alive connection opened before the drain sees the probe turn 503 (the listener closes for new ones).
            let kept = try TestHTTPConnection(port: harness.port)
            kept.get("/health")
            #expect(try kept.readResponse().status == 200)
            harness.gateway.beginDrain()
            kept.get("/health")
            #expect(try kept.readResponse().status == 503)
        }
    }
}

@Suite("gateway readiness checks vLLM's key")
struct UpstreamKeyReadinessTests {
    @Test("a gateway whose VLLM_API_KEY vLLM refuses is not ready, and /readyz says why")
    func wrongKey() async throws {
        try await withGateway(configure: { $0.upstreamKey = "not-vllms-key" }) { harness in
            #expect(await probeUntil(harness) { $0?.contains("vLLM refuses the gateway's key") == true })
            let ready = try request(port: harness.adminPort, "GET", "/readyz")
            #expect(ready.status == 503)
            #expect(ready.body.contains("vLLM refuses the gateway's key"))
            #expect(try request(port: harness.port, "GET", "/health").status == 503)
        }
    }
}

/// Probes vLLM until the readiness problem (`nil`: ready) is as expected (at most 30 times, 0.2 s apart). The harness
/// starts the gateway without its run loop, which re-probes every 2 s; on a loaded machine one probe can time out,
/// and one probe must not decide a test.
func probeUntil(_ harness: GatewayHarness, _ expected: (String?) -> Bool) async -> Bool {
    for _ in 0..<30 {
        await harness.gateway.refreshUpstreamHealth()
        if expected(harness.gateway.core.state.upstreamProblem) { return true }
        try? await Task.sleep(for: .milliseconds(200))
    }
    return false
}

/// A response as bytes on the wire, taken off the front of `bytes`: the status line, the fields, and a body framed by
/// `content-length` or chunks (a 1xx or 204 has none).
enum RawResponse {
    static func parse(_ bytes: inout [UInt8]) -> (head: HTTPResponseHead, body: String)? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let headEnd = text.range(of: "\r\n\r\n") else { return nil }
        var lines = text[..<headEnd.lowerBound].components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
        guard statusLine.count >= 2, statusLine[0] == "HTTP/1.1", let code = Int(statusLine[1]) else { return nil }
        var headers = HTTPHeaders()
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            headers.add(name: String(line[..<colon]), value: line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var rest = Array(text[headEnd.upperBound...].utf8)
        var body: [UInt8] = []
        if let length = headers.first(name: "content-length").flatMap(Int.init) {
            guard rest.count >= length else { return nil }
            body = Array(rest.prefix(length))
            rest.removeFirst(length)
        } else if headers.first(name: "transfer-encoding") == "chunked" {
            while true {
                guard let lineEnd = rest.firstIndex(of: UInt8(ascii: "\r")), let size = Int(String(decoding: rest[..<lineEnd], as: UTF8.self), radix: 16),
                      rest.count >= lineEnd + 2 + size + 2 else { return nil }
                body += rest[(lineEnd + 2)..<(lineEnd + 2 + size)]
                rest.removeFirst(lineEnd + 2 + size + 2)
                if size == 0 { break }
            }
        }
        bytes = rest
        return (HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: code), headers: headers), String(decoding: body, as: UTF8.self))
    }
}
