import NIOCore
import NIOHTTP1
import Testing
@testable import WardenGateway

/// Clients' bytes in, request parts out: every framing, split at every byte, pipelining, and every way a request is
/// refused — the smuggling cases first among them.
@Suite("client request parser")
struct ClientRequestParserTests {
    struct Parsed {
        var heads: [ClientHead] = []
        var bodies: [String] = []
        var ends = 0
    }

    /// What the parser made of `text`, fed in pieces of `step` bytes.
    static func parse(_ text: String, step: Int = .max) throws(ClientRequestParser.Malformed) -> Parsed {
        var parser = ClientRequestParser()
        var parsed = Parsed()
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            try parser.parse(ByteBuffer(bytes: bytes[offset..<min(bytes.count, offset + step)])) { part in
                switch part {
                case .head(let head):
                    parsed.heads.append(head)
                    parsed.bodies.append("")
                case .body(let buffer): parsed.bodies[parsed.bodies.count - 1] += String(buffer: buffer)
                case .end: parsed.ends += 1
                }
                return true
            }
            offset += step
        }
        return parsed
    }

    static func refusal(_ text: String) -> ClientRequestParser.Malformed? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            return error
        }
    }

    static let post = "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer k\r\ncontent-type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"
    static let chunked = "POST /v1/completions HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: Chunked\r\n\r\n"
        + "5\r\n{\"a\":\r\n" + "3;ext=\"x;y\"\r\n1}\n\r\n" + "0\r\nx-trailer: t\r\n\r\n"

    @Test("a Content-Length body, fed whole and one byte at a time, gives the same head, body and end")
    func contentLength() throws {
        for step in [Int.max, 1, 2, 3, 5, 7] {
            let parsed = try Self.parse(Self.post, step: step)
            let head = try #require(parsed.heads.first)
            #expect(head.method == .POST && head.uri == "/v1/chat/completions" && head.version == .http1_1)
            #expect(head.authorization == "Bearer k" && head.first("authorization") == "Bearer k")
            #expect(head.contentLength == 11 && head.first("content-type") == "application/json")
            #expect(head.fieldCount == 4 && head.hostCount == 1 && !head.isChunked)
            #expect(head.isKeepAlive)
            #expect(parsed.bodies == ["{\"ok\":true}"] && parsed.ends == 1, "step \(step)")
        }
    }

    @Test("chunks with extensions and trailers, at every split, give the data without framing")
    func chunks() throws {
        for step in 1...9 {
            let parsed = try Self.parse(Self.chunked, step: step)
            #expect(parsed.heads.count == 1 && parsed.bodies == ["{\"a\":1}\n"] && parsed.ends == 1, "step \(step)")
        }
    }

    @Test("no length is an empty body; empty lines before a request line are skipped; HTTP/1.0 and any token method are read")
    func bodyless() throws {
        let parsed = try Self.parse("\r\n\r\nGET /v1/models HTTP/1.1\r\nHost: gw\r\n\r\nPOST /v1/x HTTP/1.1\r\nHost: gw\r\n\r\nPATCH /y HTTP/1.0\r\n\r\n")
        #expect(parsed.heads.map(\.method) == [.GET, .POST, .PATCH])
        #expect(parsed.bodies == ["", "", ""] && parsed.ends == 3)
        #expect(parsed.heads[2].version == .http1_0 && !parsed.heads[2].isKeepAlive)
        #expect(try Self.parse("PURGE_IT /z HTTP/1.1\r\n\r\n").heads.first?.method == .RAW(value: "PURGE_IT"))
    }

    @Test("a stopped parse holds the pipelined requests behind it, unread, until it is resumed; kept bytes join them in order")
    func pipelining() throws {
        var parser = ClientRequestParser()
        var uris: [String] = []
        let two = "GET /a HTTP/1.1\r\nHost: gw\r\n\r\nGET /b HTTP/1.1\r\nHost: gw\r\n\r\nGET /c HTTP/1.1\r\n"
        try parser.parse(ByteBuffer(string: two)) { part in
            if case .head(let head) = part { uris.append(head.uri) }
            if case .end = part { return false }
            return true
        }
        #expect(uris == ["/a"] && parser.holdsBytes)
        parser.keep(ByteBuffer(string: "Host: gw\r\n\r\n"))
        try parser.parse(ByteBuffer()) { part in
            if case .head(let head) = part { uris.append(head.uri) }
            return true
        }
        #expect(uris == ["/a", "/b", "/c"] && !parser.holdsBytes)
    }

    /// Each is refused as a whole: no head or body part of it is handed on.
    static let smuggling: [(String, String)] = [
        ("Content-Length with Transfer-Encoding", "POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("Transfer-Encoding before Content-Length", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"),
        ("repeated equal Content-Length", "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}"),
        ("conflicting Content-Length", "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"),
        ("Content-Length list", "POST / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\n{}"),
        ("signed Content-Length", "POST / HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}"),
        ("negative Content-Length", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
        ("hex Content-Length", "POST / HTTP/1.1\r\nContent-Length: 0x2\r\n\r\n{}"),
        ("Content-Length with inner space", "POST / HTTP/1.1\r\nContent-Length: 1 1\r\n\r\n{}"),
        ("empty Content-Length", "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n"),
        ("Content-Length past 18 digits", "POST / HTTP/1.1\r\nContent-Length: 9999999999999999999\r\n\r\n"),
        ("gzip transfer coding", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
        ("chunked twice", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("chunked listed twice", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
        ("misspelt chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
        ("Transfer-Encoding from HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("obs-fold with a space", "GET / HTTP/1.1\r\nHost: gw\r\n folded: yes\r\n\r\n"),
        ("obs-fold with a tab", "GET / HTTP/1.1\r\nX-A: 1\r\n\tTransfer-Encoding: chunked\r\n\r\n"),
        ("bare LF line ends", "GET / HTTP/1.1\nHost: gw\n\n"),
        ("bare LF ending the head", "GET / HTTP/1.1\r\nHost: gw\r\n\n"),
        ("bare LF inside a head", "GET / HTTP/1.1\r\nHost: gw\nTransfer-Encoding: chunked\r\n\r\n"),
        ("bare CR in a value", "GET / HTTP/1.1\r\nHost: g\rw\r\n\r\n"),
        ("NUL in a value", "GET / HTTP/1.1\r\nHost: g\u{0}w\r\n\r\n"),
        ("space before the colon", "POST / HTTP/1.1\r\nContent-Length : 2\r\n\r\n{}"),
        ("empty field name", "GET / HTTP/1.1\r\n: x\r\n\r\n"),
        ("field without a colon", "GET / HTTP/1.1\r\nHost gw\r\n\r\n"),
        ("space inside the target", "GET /a b HTTP/1.1\r\n\r\n"),
        ("non-ASCII target", "GET /ä HTTP/1.1\r\n\r\n"),
        ("two spaces after the method", "GET  /a HTTP/1.1\r\n\r\n"),
        ("method with a slash", "G/T /a HTTP/1.1\r\n\r\n"),
        ("HTTP/2.0 request line", "GET / HTTP/2.0\r\n\r\n"),
        ("lower-case version", "GET / http/1.1\r\n\r\n"),
        ("request line without a version", "GET /\r\n\r\n"),
        ("chunk size with 0x", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n"),
        ("chunk size signed", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n+2\r\n{}\r\n0\r\n\r\n"),
        ("chunk size negative", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\n{}\r\n0\r\n\r\n"),
        ("chunk size led by a space", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n 2\r\n{}\r\n0\r\n\r\n"),
        ("chunk sizes, two", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2 2\r\n{}\r\n0\r\n\r\n"),
        ("chunk size empty", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n{}\r\n0\r\n\r\n"),
        ("chunk size overflowing", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000002\r\n{}\r\n0\r\n\r\n"),
        ("chunk longer than its size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{}\r\n0\r\n\r\n"),
        ("chunk size with trailing whitespace", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\n{}\r\n0\r\n\r\n"),
        ("chunk size line ended by LF", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\n{}\r\n0\r\n\r\n"),
    ]

    @Test("smuggling and malformed input is refused with 400, before any part of that request is handed on", arguments: smuggling.indices)
    func refused(_ index: Int) {
        let (name, text) = Self.smuggling[index]
        var parser = ClientRequestParser()
        var parts: [ClientRequestParser.Part] = []
        var refusal: ClientRequestParser.Malformed?
        do {
            try parser.parse(ByteBuffer(string: text)) { part in
                parts.append(part)
                return true
            }
        } catch {
            refusal = error
        }
        #expect(refusal != nil && refusal?.headTooLarge == false, "\(name) was accepted: \(parts)")
        // Chunk framing is checked as the body arrives: its head may have been handed on, never an end.
        #expect(!parts.contains { if case .end = $0 { true } else { false } }, "\(name)")
        #expect(name.hasPrefix("chunk") || parts.isEmpty, "\(name): \(parts)")
    }

    @Test("a bare CR or LF in a head still arriving is refused at once, not once the head ends or passes its limit")
    func partialHeads() throws {
        for partial in ["GET / HTTP/1.1\r\nHost: a\rb", "GET / HTTP/1.1\r\nHost: a\nX-B: c", "\nGET / HTTP/1.1"] {
            for step in [Int.max, 1] {
                #expect((try? Self.parse(partial, step: step)) == nil, "\(partial.debugDescription) step \(step)")
            }
        }
        #expect(try Self.parse("GET / HTTP/1.1\r\nHost: a\r", step: 1).heads.isEmpty, "a CR at the end may be followed by its LF")
    }

    @Test("one body's chunk-size lines may not pass 16 KiB together: extensions are not counted as body bytes")
    func chunkExtensions() throws {
        let extended = "1;" + String(repeating: "e", count: 1000) + "\r\nA\r\n"
        let fits = String(repeating: extended, count: 16)
        #expect(try Self.parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + fits + "0\r\n\r\n").bodies == [String(repeating: "A", count: 16)])
        #expect(Self.refusal("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + fits + extended + "0\r\n\r\n") != nil)
    }

    @Test("a head past 80 KiB is 431 whether or not its end arrived; so are 101 trailers; 80 KiB less a byte passes")
    func limits() throws {
        let line = "GET / HTTP/1.1\r\nX-Big: "
        let fits = line + String(repeating: "b", count: ClientRequestParser.maxHeadBytes - line.utf8.count) + "\r\n\r\n"
        #expect(try Self.parse(fits, step: 4096).ends == 1)
        // Without its end, a head is refused once it could not end within the limit (its last bytes may be part of CRLF CRLF).
        let over = line + String(repeating: "b", count: ClientRequestParser.maxHeadBytes + 4 - line.utf8.count)
        #expect(Self.refusal(over + "\r\n\r\n")?.headTooLarge == true)
        #expect(Self.refusal(over)?.headTooLarge == true, "refused before the end arrives, not buffered without end")
        let trailers = (0...ChunkedBody.maxTrailers).map { "x-t\($0): v\r\n" }.joined()
        #expect(Self.refusal("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + trailers + "\r\n")?.headTooLarge == true)
    }
}

@Suite("HTTP field syntax shared by both parsers")
struct FieldSyntaxTests {
    @Test("isToken is RFC 9110's tchar for every byte value")
    func tokens() {
        let tchar = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~".utf8)
        for byte in UInt8.min...UInt8.max {
            #expect(FieldSyntax.isToken(byte) == tchar.contains(byte), "byte \(byte)")
        }
    }

    @Test("allFieldText, eight bytes at a time, agrees with the byte-by-byte rule for every byte value at every position")
    func fieldTextWords() {
        for length in [1, 7, 8, 9, 16, 23] {
            for position in 0..<length {
                for byte in UInt8.min...UInt8.max {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    bytes[position] = byte
                    let expected = FieldSyntax.isFieldText(byte)
                    #expect(bytes.withUnsafeBytes(FieldSyntax.allFieldText) == expected, "byte \(byte) at \(position) of \(length)")
                }
            }
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0...40, using: &generator)).map { _ in
                [UInt8(0x09), 0x7F, 0x80, 0xFF, 0x1F, 0x20].randomElement(using: &generator)! }
            #expect(bytes.withUnsafeBytes(FieldSyntax.allFieldText) == bytes.allSatisfy(FieldSyntax.isFieldText), "\(bytes)")
        }
    }

    @Test("list elements: split at commas, whitespace around each trimmed, empty ones skipped")
    func listElements() {
        var elements: [String] = []
        Array(" a ,\tb,,c d , ,".utf8).withUnsafeBytes { FieldSyntax.forEachElement(of: $0) { elements.append(String(decoding: $0, as: UTF8.self)) } }
        #expect(elements == ["a", "b", "c d"])
        elements = []
        Array("".utf8).withUnsafeBytes { FieldSyntax.forEachElement(of: $0) { elements.append(String(decoding: $0, as: UTF8.self)) } }
        #expect(elements.isEmpty)
    }
}

/// What the gateway reads from a client's head in the pass that checks it.
@Suite("client request head")
struct ClientHeadTests {
    @Test("keep-alive: HTTP/1.1 unless a close option (any case, anywhere in any Connection line); HTTP/1.0 only with keep-alive and no close")
    func keepAlive() {
        let cases: [(HTTPVersion, [String], Bool)] = [
            (.http1_1, [], true), (.http1_1, ["keep-alive"], true), (.http1_1, ["Close"], false), (.http1_1, ["upgrade, CLOSE "], false),
            (.http1_1, ["te", "close"], false), (.http1_1, ["closed"], true),
            (.http1_0, [], false), (.http1_0, ["Keep-Alive"], true), (.http1_0, ["keep-alive, close"], false), (.http1_0, ["x, keep-alive"], true),
        ]
        for (version, connection, expected) in cases {
            let head = ClientHead.request(.GET, "/", version: version, fields: [("Host", "gw")] + connection.map { ("Connection", $0) })
            #expect(head.isKeepAlive == expected, "\(version) \(connection)")
        }
    }

    @Test("the facts admission reads: hosts counted, the first Expect, Authorization and X-Request-Id, the measured size; other fields on request")
    func facts() {
        let head = ClientHead.request(.POST, "/v1/x?y=1", fields: [
            ("Host", "a"), ("HOST", "b"), ("Expect", "100-continue"), ("expect", "other"), ("authorization", "Bearer one"),
            ("Authorization", "Bearer two"), ("X-Request-Id", "mine"), ("X-Forwarded-For", "10.0.0.1"), ("x-forwarded-for", "10.0.0.2, 10.0.0.3"),
            ("Content-Type", " application/json "),
        ])
        #expect(head.hostCount == 2 && head.fieldCount == 10)
        #expect(head.expectation == "100-continue" && head.authorization == "Bearer one" && head.requestIDField == "mine")
        #expect(head.values("x-forwarded-for") == ["10.0.0.1", "10.0.0.2, 10.0.0.3"])
        #expect(head.first("content-type") == "application/json" && head.first("accept") == nil)
        #expect(head.contentLength == nil && !head.isChunked && head.method == .POST && head.uri == "/v1/x?y=1")
        // The target, then each name and trimmed value and four bytes.
        let fields = [("Host", "a"), ("HOST", "b"), ("Expect", "100-continue"), ("expect", "other"), ("authorization", "Bearer one"),
                      ("Authorization", "Bearer two"), ("X-Request-Id", "mine"), ("X-Forwarded-For", "10.0.0.1"), ("x-forwarded-for", "10.0.0.2, 10.0.0.3"),
                      ("Content-Type", "application/json")]
        #expect(head.measuredSize == "/v1/x?y=1".utf8.count + fields.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 })
        var names: [String] = []
        head.forEachField { name, _ in names.append(String(decoding: name, as: UTF8.self)) }
        #expect(names == fields.map(\.0))
    }
}
