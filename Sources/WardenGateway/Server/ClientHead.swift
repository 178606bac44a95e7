import NIOCore
import NIOHTTP1

/// A client's request head: the request line, the facts the gateway acts on (framing, keep-alive, hosts, the
/// expectation, the key, the client's id), read in the one pass that checks the fields, and the field lines kept as
/// the bytes they arrived in. No `String` per field and no `HTTPHeaders`: building them cost more than every check
/// admission makes of the head, and only the few fields vLLM is sent are ever copied.
final class ClientHead: Sendable {
    let method: HTTPMethod
    let uri: String
    let version: HTTPVersion
    /// HTTP/1.1 unless a `Connection` option is `close`; HTTP/1.0 only with a `keep-alive` option (and no `close`).
    let isKeepAlive: Bool
    /// `Content-Length`: digits, at most once.
    let contentLength: Int?
    /// `Transfer-Encoding: chunked` (the only coding accepted, and only from HTTP/1.1 clients, never beside a length).
    let isChunked: Bool
    let fieldCount: Int
    /// The target's bytes plus each field's name and value and 4 bytes: what `max_header_bytes` limits.
    let measuredSize: Int
    let hostCount: Int
    /// The first `Expect` value.
    let expectation: String?
    /// The first `Authorization` value.
    let authorization: String?
    /// The first `X-Request-Id` value.
    let requestIDField: String?
    /// The field lines, CRLF after each but the last; copied out of the read (a slice would keep the read's whole
    /// buffer alive for as long as the answer streams).
    let fieldLines: [UInt8]

    /// Reads a head (request line and field lines, without the blank line that ends it). Refused: a request line
    /// that is not `token SP visible-ASCII SP HTTP/1.x`, a field that is not `token: value` with printable bytes
    /// (so no line folded onto the previous one, and no bare CR or LF), a length that is not digits or comes twice,
    /// any transfer coding but a single `chunked`, chunks from an HTTP/1.0 client, and both framings at once.
    /// A class: the head is handed from the parser to admission to the exchange, and a reference is one retain
    /// where a copy of its strings was several.
    init(_ head: UnsafeRawBufferPointer) throws(ClientRequestParser.Malformed) {
        let lineEnd = UsageScanner.find(HeldInput.lineEnd, in: head, within: 0..<head.count)?.lowerBound ?? head.count
        let (method, uri, version) = try Self.requestLine(UnsafeRawBufferPointer(rebasing: head[..<lineEnd]))
        let lines = UnsafeRawBufferPointer(rebasing: head[min(lineEnd + 2, head.count)...])
        var facts = Facts(measuredSize: uri.utf8.count)
        try FieldSyntax.forEachLine(in: lines) { line throws(ClientRequestParser.Malformed) in
            let (name, value) = try Self.split(line)
            try facts.read(name: name, value: value)
        }
        if facts.isChunked {
            guard facts.contentLength == nil else { throw .init(description: "a body framed by both Content-Length and chunks") }
            guard version == .http1_1 else { throw .init(description: "Transfer-Encoding from an HTTP/1.0 client") }
        }
        self.method = method
        self.uri = uri
        self.version = version
        isKeepAlive = !facts.close && (version == .http1_1 || facts.keepAlive)
        contentLength = facts.contentLength
        isChunked = facts.isChunked
        fieldCount = facts.fieldCount
        measuredSize = facts.measuredSize
        hostCount = facts.hostCount
        expectation = facts.expectation
        authorization = facts.authorization
        requestIDField = facts.requestIDField
        fieldLines = Array(lines)
    }

    /// What the fields say, gathered in the pass that checks them; the rest are only looked up when a rarer path
    /// needs them (``first(_:)``).
    private struct Facts {
        var measuredSize: Int
        var contentLength: Int?
        var isChunked = false
        var fieldCount = 0
        var hostCount = 0
        var expectation: String?
        var authorization: String?
        var requestIDField: String?
        /// `Connection` options.
        var close = false
        var keepAlive = false

        init(measuredSize: Int) {
            self.measuredSize = measuredSize
        }

        mutating func read(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(ClientRequestParser.Malformed) {
            fieldCount += 1
            measuredSize += name.count + value.count + 4
            // Lengths first: most names match none of these, and are told so by one comparison.
            switch name.count {
            case 4 where HeaderPolicy.name(name, is: "host"):
                hostCount += 1
            case 6 where HeaderPolicy.name(name, is: "expect"):
                if expectation == nil { expectation = String(decoding: value, as: UTF8.self) }
            case 10 where HeaderPolicy.name(name, is: "connection"):
                FieldSyntax.forEachElement(of: value) { option in
                    if HeaderPolicy.name(option, is: "close") {
                        close = true
                    } else if HeaderPolicy.name(option, is: "keep-alive") {
                        keepAlive = true
                    }
                }
            case 12 where HeaderPolicy.name(name, is: "x-request-id"):
                if requestIDField == nil { requestIDField = String(decoding: value, as: UTF8.self) }
            case 13 where HeaderPolicy.name(name, is: "authorization"):
                if authorization == nil { authorization = String(decoding: value, as: UTF8.self) }
            case 14 where HeaderPolicy.name(name, is: "content-length"):
                guard contentLength == nil else { throw .init(description: "a repeated Content-Length") }
                guard let parsed = FieldSyntax.decimal(value) else { throw .init(description: "an invalid Content-Length") }
                contentLength = parsed
            case 17 where HeaderPolicy.name(name, is: "transfer-encoding"):
                guard !isChunked, HeaderPolicy.name(value, is: "chunked") else {
                    throw .init(description: "a Transfer-Encoding other than one chunked")
                }
                isChunked = true
            default:
                break
            }
        }
    }

    /// Each field's name and value, in order.
    func forEachField(_ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void) {
        fieldLines.withUnsafeBytes { bytes in
            FieldSyntax.forEachLine(in: bytes) { line in
                // Checked when the head was read.
                let (name, value) = FieldSyntax.splitChecked(line)
                body(name, value)
            }
        }
    }

    /// Every value of the fields named `lowercase`, in order.
    func values(_ lowercase: StaticString) -> [String] {
        var found: [String] = []
        forEachField { name, value in
            if HeaderPolicy.name(name, is: lowercase) { found.append(String(decoding: value, as: UTF8.self)) }
        }
        return found
    }

    /// The first value of the field named `lowercase`.
    func first(_ lowercase: StaticString) -> String? {
        values(lowercase).first
    }

    private static func split(_ line: UnsafeRawBufferPointer) throws(ClientRequestParser.Malformed) -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer) {
        do {
            return try FieldSyntax.split(line)
        } catch {
            throw .init(description: error.rawValue)
        }
    }

    /// `method SP request-target SP HTTP-version`: the method a token, the target visible ASCII, the version 1.0 or 1.1.
    private static func requestLine(_ line: UnsafeRawBufferPointer) throws(ClientRequestParser.Malformed) -> (HTTPMethod, String, HTTPVersion) {
        guard let firstSpace = line.firstIndex(of: UInt8(ascii: " ")), firstSpace > 0,
              let lastSpace = line.lastIndex(of: UInt8(ascii: " ")), lastSpace > firstSpace + 1 else {
            throw .init(description: "an invalid request line")
        }
        let methodBytes = UnsafeRawBufferPointer(rebasing: line[..<firstSpace])
        let target = UnsafeRawBufferPointer(rebasing: line[(firstSpace + 1)..<lastSpace])
        let versionBytes = UnsafeRawBufferPointer(rebasing: line[(lastSpace + 1)...])
        guard !methodBytes.isEmpty, methodBytes.allSatisfy(FieldSyntax.isToken) else { throw .init(description: "an invalid method") }
        guard target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw .init(description: "an invalid request target") }
        let version: HTTPVersion
        if FieldSyntax.bytes(versionBytes, are: "HTTP/1.1") {
            version = .http1_1
        } else if FieldSyntax.bytes(versionBytes, are: "HTTP/1.0") {
            version = .http1_0
        } else {
            throw .init(description: "an unsupported HTTP version")
        }
        let method: HTTPMethod
        if FieldSyntax.bytes(methodBytes, are: "POST") {
            method = .POST
        } else if FieldSyntax.bytes(methodBytes, are: "GET") {
            method = .GET
        } else {
            method = HTTPMethod(rawValue: String(decoding: methodBytes, as: UTF8.self))
        }
        return (method, String(decoding: target, as: UTF8.self), version)
    }
}
