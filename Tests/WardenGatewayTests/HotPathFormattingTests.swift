import Foundation
import NIOCore
import NIOHTTP1
import Testing
import WardenConfig
import WardenJSON
@testable import WardenGateway

@Suite("access log: one JSON line per request, written without intermediate strings")
struct AccessLogTests {
    /// What `body` writes into a line of `capacity` bytes (the most each field can take).
    static func text(capacity: Int, _ body: (inout JSONLineBuilder) -> Void) -> String {
        String(decoding: JSONLineBuilder.line(capacity: capacity, body), as: UTF8.self)
    }

    @Test("every field as the log has always printed it: escapes, nulls, two-decimal milliseconds, RFC 3339 time")
    func exactLine() throws {
        let record = AccessRecord(requestID: "abc123", clientRequestID: "client-1", client: "10.0.0.7", key: nil, method: "POST",
                                  path: "/v1/\"odd\"\\path\n\u{1}é", model: "qwen", status: 200, promptTokens: 19, completionTokens: nil,
                                  chargedTokens: 35, timeToFirstTokenMilliseconds: 4.2, durationMilliseconds: 160.266,
                                  upstreamStatus: 200, decision: "allowed")
        let line = String(decoding: record.json(at: timespec(tv_sec: 1_795_770_190, tv_nsec: 7_000_000)), as: UTF8.self)
        #expect(line == #"{"time":"2026-11-27T09:03:10.007Z","request_id":"abc123","client_request_id":"client-1","client":"10.0.0.7","key":null,"method":"POST","path":"/v1/\"odd\"\\path\n\u0001é","model":"qwen","status":200,"tokens_in":19,"tokens_out":null,"tokens_charged":35,"ttft_ms":4.2,"duration_ms":160.27,"upstream_status":200,"decision":"allowed"}"# + "\n")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(parsed["path"] as? String == "/v1/\"odd\"\\path\n\u{1}é")
    }

    @Test("timestamps agree with gmtime_r from 1970 to 2200, leap days and year ends included")
    func timestamps() {
        var samples: [Int] = [0, 59, 86_399, 86_400, 951_782_400, 951_868_799, 1_709_164_800, 1_735_689_599, 1_735_689_600, 4_102_444_800, 7_258_118_399]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<2_000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            samples.append(Int(state >> 33) % 7_258_118_400)
        }
        for seconds in samples {
            let line = Self.text(capacity: 24) { $0.timestamp(timespec(tv_sec: seconds, tv_nsec: 123_456_789)) }
            var copy = seconds
            var parts = tm()
            gmtime_r(&copy, &parts)
            let expected = String(format: "%04d-%02d-%02dT%02d:%02d:%02d.123Z", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                                  parts.tm_hour, parts.tm_min, parts.tm_sec)
            #expect(line == expected, "\(seconds)")
        }
    }

    @Test("durations print as Swift prints the rounded Double: 24.0, 0.05, 1234.5; a non-finite value is null")
    func numbers() {
        for (value, text) in [(24.0, "24.0"), (0.049, "0.05"), (1234.5, "1234.5"), (0, "0.0"), (99.999, "100.0"), (Double.nan, "null")] {
            #expect(Self.text(capacity: 17) { $0.hundredths(value) } == text, "\(value)")
        }
        #expect(Self.text(capacity: 17) { $0.hundredths(1e300) } == "10000000000000.0", "capped at 10^13")
        for value in [0, 1, 9, 10, 99, 100, 4096, 1_000_000, Int.max, Int.min, -1, -42] {
            #expect(Self.text(capacity: 21) { $0.integer(value) } == String(value))
        }
    }
}

@Suite("header names compared without copies; the upstream head written as bytes")
struct HeaderNameTests {
    static func bytes<T>(_ text: String, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        Array(text.utf8).withUnsafeBytes(body)
    }

    @Test("isHopByHop and isGatewayOwned agree with their lists in any letter case, and with nothing else")
    func hopByHop() {
        for name in HeaderPolicy.hopByHop {
            #expect(Self.bytes(name, HeaderPolicy.isHopByHop) && Self.bytes(name.uppercased(), HeaderPolicy.isHopByHop), "\(name)")
        }
        for name in ["content-type", "x-request-id", "tf", "trailers", "connectiom", "Transfer-Encodinh", "", "keep_alive"] {
            #expect(!Self.bytes(name, HeaderPolicy.isHopByHop), "\(name)")
        }
        for name in ["host", "Authorization", "X-REQUEST-ID", "x-forwarded-for", "Content-Length"] {
            #expect(Self.bytes(name, HeaderPolicy.isGatewayOwned), "\(name)")
        }
        for name in ["hosts", "authorisation", "x-request-ie", "x-forwarded-fo", "content-type", ""] {
            #expect(!Self.bytes(name, HeaderPolicy.isGatewayOwned), "\(name)")
        }
        #expect(Self.bytes("Content-Length") { HeaderPolicy.name($0, is: "content-length") })
        #expect(!Self.bytes("Content-Lengt") { HeaderPolicy.name($0, is: "content-length") })
        #expect(!Self.bytes("content-lengtH\u{0}") { HeaderPolicy.name($0, is: "content-length") })
    }

    @Test("the upstream head holds every kept field however tightly the client wrote it (no space after the colon, a hundred of them)")
    func upstreamHeadTightFields() {
        for count in [1, 2, 7, 100, 300] {
            let client = ClientHead.request(fields: [("Authorization", "Bearer k")] + (0..<count).map { ("accept", "x\($0 % 10)") }, compact: true)
            var buffer = ByteBuffer()
            HeaderPolicy.writeUpstreamHead(into: &buffer, method: .POST, uri: "/v1/completions", from: client, forwarded: ["accept"],
                                           upstreamHost: "h", upstreamKey: nil, requestID: "r", clientAddress: "a", bodyLength: 0)
            let expected = "POST /v1/completions HTTP/1.1\r\n" + (0..<count).map { "accept: x\($0 % 10)\r\n" }.joined()
                + "Host: h\r\nX-Request-Id: r\r\nX-Forwarded-For: a\r\nContent-Length: 0\r\n\r\n"
            #expect(String(buffer: buffer) == expected, "\(count) fields")
        }
    }

    @Test("vLLM's head: the names its Connection fields list, lower-cased, besides close and keep-alive; none without one")
    func connectionNamed() throws {
        let head = try UpstreamHead(ByteBuffer(string: "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\ncontent-type: text/plain\r\nconnection: \tUpgrade ,, close"))
        #expect(head.connectionNamed == ["x-hop", "upgrade"])
        #expect(!head.isKeepAlive)
        #expect(try UpstreamHead(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: 2")).connectionNamed.isEmpty)
        #expect(try UpstreamHead(ByteBuffer(string: "HTTP/1.0 200 OK\r\nConnection: Keep-Alive")).isKeepAlive)
    }

    @Test("a peer's address from its socket address equals the one parsed from its text, IPv4, IPv6 and IPv4-mapped")
    func peerAddresses() throws {
        for text in ["192.0.2.10", "127.0.0.1", "2001:db8::7", "::1", "::ffff:198.51.100.4"] {
            let parsed = try #require(IPAddress(text))
            #expect(IPAddress(peer: try SocketAddress(ipAddress: text, port: 443)) == parsed, "\(text)")
            #expect(IPAddress(peer: try SocketAddress(ipAddress: text, port: 443))?.description == parsed.description)
        }
        #expect(IPAddress(peer: nil) == nil)
    }

    @Test("request ids: 32 lower-case hex digits, one per-process half, then a counter")
    func requestIDs() {
        let first = RequestIDs.next(), second = RequestIDs.next()
        for id in [first, second] {
            #expect(id.utf8.count == 32 && id.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }, "\(id)")
        }
        #expect(first.prefix(16) == second.prefix(16))
        let counter = { (id: String) in UInt64(id.suffix(16), radix: 16)! }
        #expect(counter(second) > counter(first), "other tests may take ids in between")
    }

    @Test("the upstream head: allow-listed client fields, then the gateway's own; fields it owns are never copied, whatever forward_headers says")
    func upstreamHead() {
        let client = ClientHead.request(fields: [("Content-Type", "application/json"), ("Content-Length", "999"), ("HOST", "evil.example"),
                                                 ("Authorization", "Bearer client-secret"), ("X-Trace", "t1"), ("Connection", "close"), ("X-Other", "no"),
                                                 ("x-request-id", "spoofed"), ("X-Forwarded-For", "6.6.6.6"), ("TE", "trailers")])
        var buffer = ByteBuffer()
        HeaderPolicy.writeUpstreamHead(into: &buffer, method: .POST, uri: "/v1/chat/completions?x=1", from: client,
                                       forwarded: ["content-type", "content-length", "host", "authorization", "x-trace", "connection", "x-request-id",
                                                   "x-forwarded-for", "te"],
                                       upstreamHost: "127.0.0.1:8000", upstreamKey: "up-key", requestID: "abc", clientAddress: "10.0.0.1",
                                       bodyLength: 42)
        #expect(String(buffer: buffer) == "POST /v1/chat/completions?x=1 HTTP/1.1\r\nContent-Type: application/json\r\nX-Trace: t1\r\n"
            + "Host: 127.0.0.1:8000\r\nAuthorization: Bearer up-key\r\nX-Request-Id: abc\r\nX-Forwarded-For: 10.0.0.1\r\nContent-Length: 42\r\n\r\n")
    }
}

@Suite("rate-limit reset text")
struct ResetTextTests {
    @Test("whole milliseconds rounded up, printed as seconds without trailing zeros; nothing negative")
    func durations() {
        let cases: [(Duration, String)] = [(.seconds(2), "2s"), (.milliseconds(1500), "1.5s"), (.milliseconds(1250), "1.25s"),
                                           (.microseconds(1), "0.001s"), (.microseconds(999_001), "1s"), (.milliseconds(60_010), "60.01s"),
                                           (.zero, "0s"), (.milliseconds(-5), "0s"), (.seconds(Int64.max), "1000000000000s")]
        for (duration, text) in cases {
            #expect(durationText(duration) == text, "\(duration)")
        }
    }

    @Test("rate-limit fields written into a response head are the pairs a refusal carries, in OpenAI's names and order")
    func rateLimitFields() {
        var fields = RateLimitFields()
        fields.requests = .init(limit: 60, remaining: 59, reset: .seconds(1))
        fields.tokens = .init(limit: 1000, remaining: 0, reset: .milliseconds(1500))
        fields.tokensMonth = .init(limit: 5, remaining: 5, reset: .seconds(86_400))
        #expect(fields.fields.map(\.0) == ["x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
                                           "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens",
                                           "x-ratelimit-limit-tokens-month", "x-ratelimit-remaining-tokens-month", "x-ratelimit-reset-tokens-month"])
        #expect(fields.fields.map(\.1) == ["60", "59", "1s", "1000", "0", "1.5s", "5", "5", "86400s"])
        var response = ClientResponse(answering: nil)
        let head = response.head(.ok, fields: [("content-length", "0")], rateLimits: fields, allocator: .init())
        #expect(String(buffer: head) == "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n" + fields.fields.map { "\($0.0): \($0.1)\r\n" }.joined() + "\r\n")
    }
}

@Suite("members the gateway adds to a request body")
struct InjectedMembersTests {
    private let cap: [(String, JSONValue)] = [("max_tokens", .number("50"))]
    private let both: [(String, JSONValue)] = [("max_tokens", .number("50")),
                                               ("stream_options", .object([("include_usage", .bool(true))]))]

    private func inject(_ members: [(String, JSONValue)], _ body: String) throws -> String {
        let parsed = try JSONValue.parse(body)
        return String(buffer: Admission.setting(members, in: ByteBuffer(string: body), parsed: parsed))
    }

    @Test("members the client did not send go in front; the client's bytes follow untouched, spacing and spelling included")
    func spliced() throws {
        #expect(try inject(cap, #"{"prompt":"x"}"#) == #"{"max_tokens":50,"prompt":"x"}"#)
        #expect(try inject(both, #" { "prompt" : "\u0078", "n": 1.0e0 } "#)
                == #" {"max_tokens":50,"stream_options":{"include_usage":true}, "prompt" : "\u0078", "n": 1.0e0 } "#)
        #expect(try inject(cap, "{}") == #"{"max_tokens":50}"#)
        #expect(try inject(cap, "\t{ }") == "\t{\"max_tokens\":50 }")
    }

    @Test("a member the client sent is replaced, never repeated: the document is serialized instead")
    func replaced() throws {
        #expect(try inject(cap, #"{"prompt":"x","max_tokens":null}"#) == #"{"prompt":"x","max_tokens":50}"#)
        #expect(try inject(both, #"{"stream_options":null,"prompt":"x"}"#) == #"{"stream_options":{"include_usage":true},"prompt":"x","max_tokens":50}"#)
        #expect(try inject(cap, #"{"max_tok\u0065ns":null}"#) == #"{"max_tokens":50}"#, "an escaped name is the same name")
    }

    @Test("spliced or serialized, the result parses to the document setting() builds", arguments: [
        #"{"prompt":"a"}"#, #"{}"#, #"{"messages":[{"role":"user","content":"{\"max_tokens\":1}"}],"stream":true}"#,
        #"{"max_tokens":null,"stream":true}"#, #"{"stream_options":{"continuous_usage_stats":true}}"#, "\n{\"a\":[1,2,{}]}\n",
    ])
    func equivalent(body: String) throws {
        let parsed = try JSONValue.parse(body)
        let expected = both.reduce(parsed) { $0.setting($1.0, to: $1.1) }
        let result = try JSONValue.parse(try inject(both, body))
        #expect(result["max_tokens"] == expected["max_tokens"] && result["stream_options"] == expected["stream_options"])
        #expect(result["messages"] == expected["messages"] && result["prompt"] == expected["prompt"] && result["a"] == expected["a"])
        guard case .object(let members) = result else { Issue.record("not an object"); return }
        #expect(Set(members.map(\.key)).count == members.count, "no name twice")
    }
}
