import NIOCore
import NIOPosix
import Foundation
import NIOHTTP1
import Testing
import WardenTestSupport
@testable import WardenGateway

/// The gateway frames its responses itself (``ClientResponse``): the rules NIO's encoder applied, byte for byte.
@Suite("client response framing")
struct ClientResponseTests {
    static func head(_ method: HTTPMethod = .POST, version: HTTPVersion = .http1_1) -> ClientHead {
        .request(method, version: version)
    }

    @Test("a body without a length is chunked for HTTP/1.1: hex size lines, then the last chunk")
    func chunked() {
        var response = ClientResponse(answering: Self.head())
        let head = response.head(.ok, fields: [("content-type", "text/event-stream")], allocator: .init())
        #expect(String(buffer: head) == "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        #expect(response.framing == .chunked)
        let chunk = response.body(ByteBuffer(string: String(repeating: "x", count: 26)), allocator: .init())
        #expect(chunk.map { String(buffer: $0) } == "1a\r\n" + String(repeating: "x", count: 26) + "\r\n")
        #expect(response.body(ByteBuffer(), allocator: .init()) == nil, "an empty part would read as the last chunk")
        #expect(response.end.map { "\($0)" } == "0\r\n\r\n")
        #expect(!response.closesConnection)
    }

    @Test("a chunk still queued is never rewritten by the next; once let go its buffer carries the next chunk; a large one is not kept")
    func chunkBufferReuse() throws {
        var response = ClientResponse(answering: Self.head())
        _ = response.head(.ok, fields: [], allocator: .init())
        let first = response.body(ByteBuffer(string: "data: a\n\n"), allocator: .init())
        let queued = try #require(first)
        var second = response.body(ByteBuffer(string: "data: bc\n\n"), allocator: .init())
        #expect(String(buffer: queued) == "9\r\ndata: a\n\n\r\n", "the channel's pending write is untouched")
        #expect(second.map { String(buffer: $0) } == "a\r\ndata: bc\n\n\r\n")
        let address = second?.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        second = nil  // written and released, as the channel does
        let third = response.body(ByteBuffer(string: "data: d\n\n"), allocator: .init())
        #expect(third?.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } == address, "refilled in place, not allocated")
        #expect(third.map { String(buffer: $0) } == "9\r\ndata: d\n\n\r\n")

        let large = response.body(ByteBuffer(repeating: UInt8(ascii: "x"), count: 8192), allocator: .init())
        let afterLarge = response.body(ByteBuffer(string: "y"), allocator: .init())
        #expect(afterLarge.map { String(buffer: $0) } == "1\r\ny\r\n")
        #expect(large?.readableBytes == 8192 + 8)
        #expect(afterLarge?.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } != large?.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) })
    }

    @Test("chunk sizes are lower-case hex without leading zeros", arguments: [(1, "1"), (15, "f"), (16, "10"), (4096, "1000"), (65_535, "ffff"), (1 << 20, "100000")])
    func hexSizes(size: Int, expected: String) {
        var buffer = ByteBuffer()
        buffer.writeHexadecimal(size)
        #expect(String(buffer: buffer) == expected)
    }

    @Test("a length from vLLM keeps the body as it is; the status line carries any code and its reason")
    func contentLength() {
        var response = ClientResponse(answering: Self.head())
        let head = response.head(HTTPResponseStatus(statusCode: 429), fields: [("content-length", "2")], allocator: .init())
        #expect(String(buffer: head) == "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 2\r\n\r\n")
        #expect(response.body(ByteBuffer(string: "{}"), allocator: .init()).map { String(buffer: $0) } == "{}")
        #expect(response.end == nil)
    }

    @Test("vLLM's field lines go out as they arrived, those the caller drops left out, a repeated length once; a bodyless status gets none")
    func forwardedLines() throws {
        let upstream = try UpstreamHead(ByteBuffer(string: "HTTP/1.1 200 OK\r\nServer:  uvicorn \r\nX-Drop: 1\r\ncontent-length: 2\r\nContent-Length: 2\r\nx-b:\tv"))
        var response = ClientResponse(answering: Self.head())
        let head = response.head(.ok, forwarding: upstream, keeping: { !HeaderPolicy.name($0, is: "x-drop") },
                                 fields: [("x-request-id", "r")], allocator: .init())
        #expect(String(buffer: head) == "HTTP/1.1 200 OK\r\nServer:  uvicorn \r\ncontent-length: 2\r\nx-b:\tv\r\nx-request-id: r\r\n\r\n")
        #expect(response.framing == .contentLength)
        var notModified = ClientResponse(answering: Self.head())
        let bodyless = notModified.head(.notModified, forwarding: upstream, fields: [], allocator: .init())
        #expect(String(buffer: bodyless) == "HTTP/1.1 304 Not Modified\r\nServer:  uvicorn \r\nX-Drop: 1\r\nx-b:\tv\r\n\r\n")
    }

    @Test("HEAD is answered with the fields a GET would get and no body bytes")
    func head() {
        var response = ClientResponse(answering: Self.head(.HEAD))
        let whole = response.whole(.unauthorized, fields: [("x-request-id", "r")], body: ByteBuffer(string: "{\"error\":1}"), allocator: .init())
        #expect(String(buffer: whole) == "HTTP/1.1 401 Unauthorized\r\nx-request-id: r\r\ncontent-length: 11\r\n\r\n")
        var streamed = ClientResponse(answering: Self.head(.HEAD))
        _ = streamed.head(.ok, fields: [], allocator: .init())
        #expect(streamed.body(ByteBuffer(string: "data"), allocator: .init()) == nil)
        #expect(streamed.end == nil)
    }

    @Test("an HTTP/1.0 client gets a body that ends with the connection, never chunks")
    func http10() {
        var response = ClientResponse(answering: Self.head(version: .http1_0))
        let head = response.head(.ok, fields: [("content-type", "text/event-stream")], allocator: .init())
        #expect(String(buffer: head) == "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
        #expect(response.closesConnection)
        #expect(response.body(ByteBuffer(string: "data: x\n\n"), allocator: .init()).map { String(buffer: $0) } == "data: x\n\n")
        #expect(response.end == nil)
        var kept = ClientResponse(answering: Self.head(version: .http1_0))
        let keptHead = kept.head(.ok, fields: [("content-length", "2")], allocator: .init())
        #expect(String(buffer: keptHead) == "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\n", "kept open, so said")
        var closed = ClientResponse(answering: Self.head(version: .http1_0))
        let closedHead = closed.head(.ok, fields: [("content-length", "2"), ("connection", "close")], allocator: .init())
        #expect(String(buffer: closedHead) == "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n")
    }

    @Test("204 and 304 carry no body and no length field")
    func bodyless() {
        var response = ClientResponse(answering: Self.head())
        let head = response.head(.noContent, fields: [("content-length", "0"), ("x-request-id", "r")], allocator: .init())
        #expect(String(buffer: head) == "HTTP/1.1 204 No Content\r\nx-request-id: r\r\n\r\n")
        #expect(response.body(ByteBuffer(string: "x"), allocator: .init()) == nil)
    }
}

@Suite("gateway: pipelining, HEAD and HTTP/1.0 on a real connection")
struct ClientConnectionTests {
    static let chat = #"{"messages":[{"role":"user","content":"hi"}],"max_tokens":4}"#
    static let streamedChat = #"{"messages":[{"role":"user","content":"hi"}],"max_tokens":4,"stream":true}"#

    static func post(_ path: String, _ json: String, _ headers: [String: String], version: String = "1.1") -> String {
        var text = "POST \(path) HTTP/\(version)\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { text += "\(name): \(value)\r\n" }
        return text + "\r\n" + json
    }

    @Test("requests pipelined in one write are answered in order, each once: proxied, refused, streamed, probe")
    func pipelined() async throws {
        try await withGateway { harness in
            #expect(try await harness.waitUntilReady())
            let connection = try TestHTTPConnection(port: harness.port)
            let before = try harness.upstreamRequests()
            connection.send(Self.post("/v1/chat/completions", Self.chat, harness.bearer.merging(["X-Request-Id": "p1"]) { $1 })
                + Self.post("/tokenize", "{}", harness.bearer.merging(["X-Request-Id": "p2"]) { $1 })
                + Self.post("/v1/chat/completions", Self.streamedChat, harness.bearer.merging(["X-Request-Id": "p3"]) { $1 })
                + "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: p4\r\n\r\n")
            let answers = try (0..<4).map { _ in try connection.readResponse() }
            #expect(answers.map(\.status) == [200, 404, 200, 200])
            #expect(answers.map { $0.headers["x-request-id"] } == ["p1", "p2", "p3", "p4"])
            #expect(answers[0].body.contains("chat.completion"))
            #expect(answers[2].headers["transfer-encoding"] == "chunked")
            #expect(answers[2].body.hasSuffix("data: [DONE]\n\n"))
            #expect(try harness.upstreamRequests() - before == 2, "the two chats, once each")
        }
    }

    @Test("malformed bytes pipelined behind a request get their 400 after its answer, then the connection closes")
    func malformedBehind() async throws {
        try await withGateway { harness in
            #expect(try await harness.waitUntilReady())
            let connection = try TestHTTPConnection(port: harness.port)
            connection.send(Self.post("/v1/chat/completions", Self.chat, harness.bearer) + "GET /health HTTP/1.1\r\nHost: a\r\nNo Colon\r\n\r\n")
            #expect(try connection.readResponse().status == 200)
            let refused = try connection.readResponse()
            #expect(refused.status == 400)
            #expect(refused.headers["connection"] == "close")
            #expect(try connection.readToClose().isEmpty)
        }
    }

    @Test("HEAD gets a length and no body bytes, so the next answer on the connection parses")
    func head() async throws {
        try await withGateway { harness in
            #expect(try await harness.waitUntilReady())
            let connection = try TestHTTPConnection(port: harness.port)
            connection.send("HEAD /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let refused = try connection.read(through: "\r\n\r\n")
            #expect(refused.hasPrefix("HTTP/1.1 401 "))
            #expect(refused.contains("content-length: "))
            connection.send("HEAD /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            #expect(try connection.read(through: "\r\n\r\n").hasPrefix("HTTP/1.1 200 OK\r\n"))
            connection.get("/health")
            let probe = try connection.readResponse()
            #expect(probe.status == 200)
            #expect(probe.body.isEmpty)
        }
    }

    @Test("an HTTP/1.0 client gets a stream without chunk framing, ended by the close")
    func http10Stream() async throws {
        try await withGateway { harness in
            #expect(try await harness.waitUntilReady())
            let connection = try TestHTTPConnection(port: harness.port)
            connection.send(Self.post("/v1/chat/completions", Self.streamedChat, harness.bearer, version: "1.0"))
            let text = try connection.readToClose()
            let parts = text.components(separatedBy: "\r\n\r\n")
            #expect(parts[0].hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(parts[0].contains("connection: close"))
            #expect(!parts[0].contains("transfer-encoding"))
            let body = parts.dropFirst().joined(separator: "\r\n\r\n")
            #expect(body.hasPrefix("data: {"))
            #expect(body.hasSuffix("data: [DONE]\n\n"))
        }
    }

    @Test("100 requests pipelined by a client that reads nothing: answered one at a time, in order, each reaching vLLM once")
    func pipelineFlood() async throws {
        try await withGateway(configure: { $0.limits.requestsPerMinute = 100_000; $0.limits.burst = 1000 }) { harness in
            #expect(try await harness.waitUntilReady())
            let connection = try TestHTTPConnection(port: harness.port)
            let before = try harness.upstreamRequests()
            connection.send((0..<100).map { Self.post("/v1/chat/completions", Self.chat, harness.bearer.merging(["X-Request-Id": "flood-\($0)"]) { $1 }) }
                .joined())
            // Not reading yet: the gateway holds what it read and stops reading; vLLM sees the requests one by one.
            try await Task.sleep(for: .milliseconds(300))
            #expect(try harness.simStat("in_flight") <= 1)
            let answers = try (0..<100).map { _ in try connection.readResponse() }
            #expect(answers.allSatisfy { $0.status == 200 })
            #expect(answers.map { $0.headers["x-request-id"] ?? "" } == (0..<100).map { "flood-\($0)" })
            #expect(try harness.upstreamRequests() - before == 100)
        }
    }

    @Test("a client that pipelines streams behind a slow one and hangs up during it leaves nothing running; only the first reached vLLM")
    func pipelineHangUp() async throws {
        try await withGateway { harness in
            #expect(try await harness.waitUntilReady())
            let connection = try TestHTTPConnection(port: harness.port)
            let before = try harness.upstreamRequests()
            // Each stream takes 30 s, so the hang-up comes while the first is still running, however loaded the machine.
            let slow = harness.bearer.merging(["x-sim-fault": "itl-ms=50, output-tokens=600"]) { $1 }
            connection.send((0..<20).map { _ in Self.post("/v1/chat/completions", Self.streamedChat.replacingOccurrences(of: "\"max_tokens\":4", with: "\"max_tokens\":600"), slow) }.joined())
            _ = try connection.read(through: "\r\n\r\n")
            connection.hangUp()
            #expect(try await eventually { harness.gateway.inFlight == 0 })
            try await Task.sleep(for: .milliseconds(200))
            #expect(try harness.upstreamRequests() - before == 1, "queued requests die with the connection")
        }
    }
}


@Suite("gateway: vLLM's framing is not trusted where the gateway changes the body")
struct UpstreamFramingTests {
    @Test("an event stream sent with a Content-Length reaches the client chunked, without the usage event, on a connection that stays usable")
    func eventStreamWithLength() async throws {
        let events = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n"
            + "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\n"
            + "data: [DONE]\n\n"
        let (upstream, upstreamPort, _) = try await ScriptedUpstream.start { requestLine in
            requestLine.hasPrefix("POST /v1/chat/completions")
                ? "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: \(events.utf8.count)\r\n\r\n" + events
                : "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
        }
        defer { upstream.close(promise: nil) }
        try await withGateway(configure: { $0.upstreamPort = upstreamPort }) { harness in
            let connection = try TestHTTPConnection(port: harness.port)
            connection.post("/v1/chat/completions", json: #"{"messages":[{"role":"user","content":"hi"}],"max_tokens":4,"stream":true}"#,
                            headers: harness.bearer)
            let streamed = try connection.readResponse()
            #expect(streamed.status == 200)
            #expect(streamed.headers["content-length"] == nil)
            #expect(streamed.headers["transfer-encoding"] == "chunked")
            #expect(streamed.body.contains("\"content\":\"hi\""))
            #expect(!streamed.body.contains("usage"), "the client did not ask for usage")
            #expect(streamed.body.hasSuffix("data: [DONE]\n\n"))
            // The connection still reads as HTTP: a second stream on it is framed and answered the same way.
            connection.post("/v1/chat/completions", json: #"{"messages":[{"role":"user","content":"hi"}],"max_tokens":4,"stream":true}"#,
                            headers: harness.bearer)
            let second = try connection.readResponse()
            #expect(second.status == 200)
            #expect(second.body.hasSuffix("data: [DONE]\n\n"))
        }
    }

    @Test("vLLM's hop-by-hop fields, those its Connection field names, its request id and rate limits never reach the client; the rest does, as sent")
    func forwardedFields() async throws {
        let (upstream, upstreamPort, _) = try await ScriptedUpstream.start { requestLine in
            requestLine.hasPrefix("POST")
                ? "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\nx-request-id: vllm-internal\r\n"
                    + "X-RateLimit-Limit-Requests: 1\r\nServer: uvicorn\r\ncontent-type: application/json\r\ncontent-length: 2\r\nContent-Length: 2\r\n\r\n{}"
                : "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
        }
        defer { upstream.close(promise: nil) }
        try await withGateway(configure: { $0.upstreamPort = upstreamPort }) { harness in
            let connection = try TestHTTPConnection(port: harness.port)
            connection.post("/v1/chat/completions", json: #"{"messages":[{"role":"user","content":"hi"}],"max_tokens":4}"#,
                            headers: harness.bearer.merging(["Connection": "close"]) { $1 })
            let text = try connection.readToClose()
            let head = text.components(separatedBy: "\r\n\r\n")[0].lowercased()
            #expect(head.hasPrefix("http/1.1 200 ok\r\n"))
            #expect(head.contains("\r\nserver: uvicorn\r\n") && head.contains("\r\ncontent-type: application/json\r\n"))
            #expect(head.components(separatedBy: "content-length: 2").count == 2, "one length: \(head)")
            #expect(head.components(separatedBy: "x-request-id: ").count == 2 && !head.contains("vllm-internal"))
            #expect(!head.contains("x-hop") && !head.contains("keep-alive") && !head.contains("x-ratelimit-limit-requests: 1\r\n"))
            #expect(head.contains("\r\nconnection: close"))
            #expect(text.hasSuffix("\r\n\r\n{}"))
        }
    }

    @Test("vLLM's body reaches the client byte for byte whether it joins the head's write (small) or follows it (over the join limit)")
    func joinedAndSeparateBodies() async throws {
        let small = #"{"usage":{"prompt_tokens":3,"completion_tokens":1}}"#
        // Over the join limit, with a usage object at the end, so metering still reads the whole of it.
        let large = "{\"pad\":\"" + String(repeating: "x", count: ProxyExchange.joinedBodyLimit + 5000) + "\",\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}"
        let (upstream, upstreamPort, _) = try await ScriptedUpstream.start { requestLine in
            let body = requestLine.contains("large") ? large : small
            return "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\n\r\n" + body
        }
        defer { upstream.close(promise: nil) }
        try await withGateway(configure: { $0.upstreamPort = upstreamPort }) { harness in
            let connection = try TestHTTPConnection(port: harness.port)
            for (query, expected) in [("small", small), ("large", large), ("small-again", small)] {
                connection.post("/v1/chat/completions?\(query)", json: #"{"messages":[{"role":"user","content":"hi"}],"max_tokens":4}"#,
                                headers: harness.bearer)
                let answer = try connection.readResponse()
                #expect(answer.status == 200)
                #expect(answer.headers["content-length"] == String(expected.utf8.count))
                #expect(answer.body == expected, "\(query): \(answer.body.utf8.count) bytes, expected \(expected.utf8.count)")
            }
            // Nothing of the large body is left over: the next answer on the connection parses from its first byte
            // (200 or 503, whether or not the readiness probe has run yet).
            connection.get("/health")
            #expect([200, 503].contains(try connection.readResponse().status))
        }
    }

    @Test("vLLM named by a host name is resolved and reached; by an IP literal it is connected to directly")
    func upstreamHostName() async throws {
        for host in ["localhost", "127.0.0.1"] {
            try await withGateway(configure: { $0.upstreamHost = host }) { harness in
                let before = try harness.upstreamRequests()
                let answer = try request(port: harness.port, "POST", "/v1/chat/completions",
                                         json: #"{"messages":[{"role":"user","content":"hi"}],"max_tokens":4}"#, headers: harness.bearer)
                #expect(answer.status == 200, "\(host): \(answer.body)")
                #expect(try harness.upstreamRequests() - before == 1)
            }
        }
    }

    @Test("an HTTP/1.0 client asking for keep-alive is told its connection stays open, and it does")
    func http10KeptAlive() async throws {
        try await withGateway { harness in
            #expect(try await harness.waitUntilReady())
            let connection = try TestHTTPConnection(port: harness.port)
            let keepAlive = harness.bearer.merging(["Connection": "keep-alive"]) { $1 }
            for _ in 0..<2 {
                connection.send(ClientConnectionTests.post("/v1/chat/completions", ClientConnectionTests.chat, keepAlive, version: "1.0"))
                let answer = try connection.readResponse()
                #expect(answer.status == 200 && answer.headers["connection"] == "keep-alive", "\(answer.headers)")
            }
        }
    }

    @Test("an HTTP/1.0 client asking for keep-alive gets a stream ended by the close; what it pipelined behind is never run")
    func http10KeepAlive() async throws {
        try await withGateway { harness in
            #expect(try await harness.waitUntilReady())
            let connection = try TestHTTPConnection(port: harness.port)
            let before = try harness.upstreamRequests()
            let keepAlive = harness.bearer.merging(["Connection": "keep-alive"]) { $1 }
            connection.send(ClientConnectionTests.post("/v1/chat/completions", ClientConnectionTests.streamedChat, keepAlive, version: "1.0")
                + ClientConnectionTests.post("/v1/chat/completions", ClientConnectionTests.chat, keepAlive, version: "1.0"))
            let text = try connection.readToClose()
            #expect(text.components(separatedBy: "HTTP/1.1 ").count == 2, "one answer: \(text.prefix(300))")
            #expect(text.hasSuffix("data: [DONE]\n\n"))
            #expect(try await eventually { harness.gateway.inFlight == 0 })
            #expect(try harness.upstreamRequests() - before == 1)
        }
    }

    @Test("answers that end vLLM's connection (connection: close, HTTP/1.0, a body ended by the close) reach the client whole, and the next request opens a new connection")
    func upstreamCloses() async throws {
        let answers = [
            "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n{\"a\":1}",
            "HTTP/1.0 200 OK\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n{\"a\":2}",
            "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        ]
        for answer in answers {
            let (upstream, upstreamPort, seen) = try await ScriptedUpstream.start { requestLine in
                requestLine.hasPrefix("POST") ? answer : "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
            }
            defer { upstream.close(promise: nil) }
            try await withGateway(configure: { $0.upstreamPort = upstreamPort }) { harness in
                let connection = try TestHTTPConnection(port: harness.port)
                for round in 1...3 {
                    connection.post("/v1/chat/completions", json: ClientConnectionTests.chat, headers: harness.bearer)
                    let response = try connection.readResponse()
                    if answer.contains("503") {
                        #expect(response.status == 502, "vLLM's 5xx is answered with the gateway's own error")
                    } else {
                        #expect(response.status == 200)
                        #expect(response.body == String(answer.suffix(7)), "round \(round)")
                    }
                }
                #expect(seen.count("POST /v1/chat/completions") == 3)
                #expect(try await eventually { harness.gateway.inFlight == 0 })
            }
        }
    }

    @Test("a body without length or chunks runs to vLLM's close and reaches the client whole")
    func upstreamBodyUntilClose() async throws {
        let (upstream, upstreamPort, _) = try await ScriptedUpstream.start(closeAfterAnswer: true) { requestLine in
            requestLine.hasPrefix("POST") ? "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"whole\":true}" : "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
        }
        defer { upstream.close(promise: nil) }
        try await withGateway(configure: { $0.upstreamPort = upstreamPort }) { harness in
            let connection = try TestHTTPConnection(port: harness.port)
            connection.post("/v1/chat/completions", json: ClientConnectionTests.chat, headers: harness.bearer)
            let response = try connection.readResponse()
            #expect(response.status == 200)
            #expect(response.body == "{\"whole\":true}")
            #expect(try await eventually { harness.accessLog.contents.last?.contains("\"decision\":\"allowed\"") == true },
                    "ended by vLLM's close, not cut short: \(harness.accessLog.contents.last ?? "")")
        }
    }

    @Test("a malformed answer on a kept-alive connection is refused (503) and the request is not sent again")
    func malformedNotRetried() async throws {
        let (upstream, upstreamPort, seen) = try await ScriptedUpstream.start { requestLine in
            requestLine.hasPrefix("POST /v1/chat/completions") ? "HTTP/1.1 200 OK\r\nbad header\r\n\r\n"
                : "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
        }
        defer { upstream.close(promise: nil) }
        try await withGateway(configure: { $0.upstreamPort = upstreamPort }) { harness in
            // One answered request leaves a kept-alive connection in the pool; the next request reuses it.
            let connection = try TestHTTPConnection(port: harness.port)
            connection.post("/v1/completions", json: #"{"prompt":"p","max_tokens":1}"#, headers: harness.bearer)
            #expect(try connection.readResponse().status == 200)
            connection.post("/v1/chat/completions", json: ClientConnectionTests.chat, headers: harness.bearer)
            #expect(try connection.readResponse().status == 503)
            #expect(seen.count("POST /v1/chat/completions") == 1)
        }
    }
}
