import NIOCore
import NIOHTTP1
import Testing
@testable import WardenGateway

/// vLLM's bytes in, response parts out: every framing, split at every byte, and every way a response may be refused.
@Suite("upstream response parser")
struct UpstreamResponseParserTests {
    /// What the parser made of `text`, fed in pieces of `step` bytes: the head, the body bytes, whether it ended.
    static func parse(_ text: String, step: Int = .max, method: HTTPMethod = .POST) throws -> (head: UpstreamHead?, body: String, ended: Bool) {
        var parser = UpstreamResponseParser()
        parser.expectResponse(to: method)
        var head: UpstreamHead?, body = "", ended = false
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let piece = ByteBuffer(bytes: bytes[offset..<min(bytes.count, offset + step)])
            try parser.parse(piece) { part in
                switch part {
                case .head(let value): head = value
                case .body(let buffer): body += String(buffer: buffer)
                case .end: ended = true
                }
            }
            offset += step
        }
        return (head, body, ended)
    }

    static let json = "HTTP/1.1 200 OK\r\ndate: Fri, 27 Nov 2026 12:00:00 GMT\r\nserver: uvicorn\r\ncontent-length: 11\r\ncontent-type: application/json\r\n\r\n{\"ok\":true}"
    static let chunked = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n"
        + "f\r\ndata: {\"a\":1}\n\n\r\n" + "7;ext=\"x;y\"\r\ndata: 2\r\n" + "0\r\nx-trailer: t\r\n\r\n"

    @Test("a Content-Length body, fed whole and one byte at a time, gives the same head, body and end")
    func contentLength() throws {
        for step in [Int.max, 1, 7] {
            let (head, body, ended) = try Self.parse(Self.json, step: step)
            #expect(head?.status == .ok)
            #expect(head?.field("server") == "uvicorn")
            #expect(head?.field("date") == "Fri, 27 Nov 2026 12:00:00 GMT")
            #expect(head?.isKeepAlive == true)
            #expect(body == "{\"ok\":true}")
            #expect(ended)
        }
    }

    @Test("chunks with extensions and trailers, at every split, give the data without framing")
    func chunks() throws {
        for step in 1...9 {
            let (head, body, ended) = try Self.parse(Self.chunked, step: step)
            #expect(head?.field("content-type") == "text/event-stream; charset=utf-8")
            #expect(body == "data: {\"a\":1}\n\ndata: 2", "step \(step)")
            #expect(ended)
        }
    }

    @Test("HEAD, 204 and 304 answers have no body; an interim 100 is skipped; a zero length ends at once")
    func bodyless() throws {
        let head = try Self.parse("HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n", method: .HEAD)
        #expect(head.ended && head.body.isEmpty)
        #expect(try Self.parse("HTTP/1.1 204 No Content\r\n\r\n").ended)
        #expect(try Self.parse("HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n").ended)
        let interim = try Self.parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok")
        #expect(interim.head?.status == .created && interim.body == "ok" && interim.ended)
        #expect(try Self.parse("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").ended)
    }

    @Test("no length and no chunks: the body runs to the close and the connection is not reused; HTTP/1.0 keep-alive is honoured")
    func untilClose() throws {
        var parser = UpstreamResponseParser()
        parser.expectResponse(to: .GET)
        var head: UpstreamHead?
        try parser.parse(ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\nsome bytes")) { if case .head(let value) = $0 { head = value } }
        #expect(parser.bodyEndsWithClose)
        #expect(head?.isKeepAlive == false)
        let old = try Self.parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\ncontent-length: 1\r\n\r\nx")
        #expect(old.head?.isKeepAlive == true)
        #expect(try Self.parse("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\nx").head?.isKeepAlive == false)
        #expect(try Self.parse("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\nx").head?.isKeepAlive == false)
    }

    @Test("responses a proxy must not pass are refused", arguments: [
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: +2\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nx-a: b\r\n folded\r\ncontent-length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nx-a: b\nx-b: c\r\ncontent-length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nx-a: b\u{0}c\r\ncontent-length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: x\r\n\r\n",
        "HTTP/2.0 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chun\u{212A}ed\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5 junk\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n" + String(repeating: "x-t: 1\r\n", count: 101) + "\r\n",
    ])
    func refused(response: String) {
        #expect(throws: UpstreamResponseParser.Malformed.self) { try Self.parse(response) }
        #expect(throws: UpstreamResponseParser.Malformed.self) { try Self.parse(response, step: 1) }
    }

    @Test("a head that never ends is refused once it passes the limit, not buffered without end")
    func endlessHead() {
        let endless = "HTTP/1.1 200 OK\r\n" + String(repeating: "x-filler: 0123456789\r\n", count: 5000)
        #expect(throws: UpstreamResponseParser.Malformed.self) { try Self.parse(endless, step: 4096) }
    }

    @Test("bytes when no request is outstanding are refused")
    func unsolicited() {
        var parser = UpstreamResponseParser()
        #expect(throws: UpstreamResponseParser.Malformed.self) { try parser.parse(ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\n")) { _ in } }
    }

    @Test("an equal repeated Content-Length is kept once; chunk extensions after whitespace pass; an unknown code keeps vLLM's reason phrase")
    func tolerated() throws {
        let repeated = try Self.parse("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nContent-Length: 2\r\n\r\nok")
        #expect(repeated.head?.contentLength == 2)
        #expect(repeated.body == "ok")
        #expect(try Self.parse("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2 ;x=y\r\nok\r\n0\r\n\r\n").body == "ok")
        #expect(try Self.parse("HTTP/1.1 299 Fine\r\ncontent-length: 0\r\n\r\n").head?.status.reasonPhrase == "Fine")
        #expect(try Self.parse("HTTP/1.1 200\r\ncontent-length: 0\r\n\r\n").head?.status.code == 200)
    }

    @Test("whether any byte of the answer came: a connection closed before one may be retried, one closed after may not")
    func receivedBytes() throws {
        var parser = UpstreamResponseParser()
        parser.expectResponse(to: .POST)
        #expect(!parser.receivedBytes)
        try parser.parse(ByteBuffer(string: "HTTP/1.1 2")) { _ in }
        #expect(parser.receivedBytes)
        parser.expectResponse(to: .POST)
        #expect(!parser.receivedBytes)
    }
}

extension UpstreamHead {
    /// The first value of a field, as the client would read it.
    func field(_ wanted: String) -> String? {
        var found: String?
        forEachField { name, line in
            guard found == nil, HeaderPolicy.name(name, equalsLowercase: wanted),
                  let (_, value) = try? UpstreamHead.split(line) else { return }
            found = String(decoding: value, as: UTF8.self)
        }
        return found
    }
}
