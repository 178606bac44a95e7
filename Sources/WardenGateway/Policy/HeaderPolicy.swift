import NIOCore
#if canImport(Glibc)
import Glibc
#endif
import NIOHTTP1
import WardenConfig

/// Header rules applied both ways: hop-by-hop headers never cross the gateway, identity headers are its own.
enum HeaderPolicy {
    /// RFC 9110 §7.6.1 connection-specific fields, plus the ones the gateway sets itself.
    static let hopByHop: Set<String> = ["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
                                        "te", "trailer", "transfer-encoding", "upgrade"]

    /// Whether `name` is one of ``hopByHop``, compared without a lower-cased copy.
    static func isHopByHop(_ name: UnsafeRawBufferPointer) -> Bool {
        switch name.count {
        case 2: return self.name(name, is: "te")
        case 7: return self.name(name, is: "trailer") || self.name(name, is: "upgrade")
        case 10: return self.name(name, is: "connection") || self.name(name, is: "keep-alive")
        case 16: return self.name(name, is: "proxy-connection")
        case 17: return self.name(name, is: "transfer-encoding")
        case 18: return self.name(name, is: "proxy-authenticate")
        case 19: return self.name(name, is: "proxy-authorization")
        default: return false
        }
    }

    /// ASCII case-insensitive comparison of a field name with a lower-case name.
    static func name(_ name: UnsafeRawBufferPointer, is lowercase: StaticString) -> Bool {
        guard name.count == lowercase.utf8CodeUnitCount else { return false }
        return foldedEqual(name, UnsafeRawBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount))
    }

    /// Whether a field name starts with a lower-case prefix, ASCII case-insensitively.
    static func name(_ name: UnsafeRawBufferPointer, hasLowercasePrefix prefix: StaticString) -> Bool {
        guard name.count >= prefix.utf8CodeUnitCount else { return false }
        return foldedEqual(UnsafeRawBufferPointer(rebasing: name.prefix(prefix.utf8CodeUnitCount)),
                           UnsafeRawBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount))
    }

    /// As above, for a lower-case name known only at run time.
    static func name(_ name: String, equalsLowercase lowercase: String) -> Bool {
        var name = name
        return name.withUTF8 { self.name(UnsafeRawBufferPointer($0), equalsLowercase: lowercase) }
    }

    static func name(_ name: UnsafeRawBufferPointer, equalsLowercase lowercase: String) -> Bool {
        guard name.count == lowercase.utf8.count else { return false }
        var lowercase = lowercase
        return lowercase.withUTF8 { foldedEqual(name, UnsafeRawBufferPointer($0)) }
    }

    /// Equal lengths, `expected` in lower case. Most names arrive in lower case already (uvicorn's, the gateway's
    /// own), so an exact comparison comes first.
    private static func foldedEqual(_ bytes: UnsafeRawBufferPointer, _ expected: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count == expected.count else { return false }
        guard let base = bytes.baseAddress, let other = expected.baseAddress else { return true }
        if memcmp(base, other, bytes.count) == 0 { return true }
        for index in 0..<bytes.count {
            let byte = bytes[index]
            let folded = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
            guard folded == expected[index] else { return false }
        }
        return true
    }

    /// The only client headers vLLM receives. vLLM acts on others (`X-Data-Parallel-Rank`, `X-Forwarded-*`,
    /// `X-Request-Id` as its internal id), and `Accept-Encoding` would compress what the gateway meters.
    /// `gateway.forward_headers` adds to them.
    static let defaultForwarded: Set<String> = ["content-type", "accept", "user-agent", "traceparent", "tracestate"]

    /// The request head sent to vLLM, written straight into `buffer`: the request line, the allow-listed client
    /// fields, then the gateway's own. Fields the gateway sets itself, and hop-by-hop ones, are never copied from
    /// the client, whatever `forward_headers` lists: a second `Content-Length` would let a client smuggle a request.
    static func writeUpstreamHead(into buffer: inout ByteBuffer, method: HTTPMethod, uri: String, from client: ClientHead,
                                  forwarded: [String], upstreamHost: String, upstreamKey: String?, requestID: String,
                                  clientAddress: String, bodyLength: Int) {
        // A kept field is written `name: value` CRLF: at most its line, one byte for a space the client left out
        // after the colon, and the CRLF.
        var size = method.rawValue.utf8.count + uri.utf8.count + upstreamHost.utf8.count + requestID.utf8.count
            + clientAddress.utf8.count + client.fieldLines.count + 3 * client.fieldCount + 20 + 128  // the fixed text below is 99 bytes, the length at most 20
        if let upstreamKey { size += upstreamKey.utf8.count }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { bytes in
            var head = HeadBytes(bytes)
            head.append(method.rawValue)
            head.append(" ")
            head.append(uri)
            head.append(" HTTP/1.1\r\n")
            client.forEachField { name, value in
                // The allow-list first: most fields are not on it.
                guard forwarded.contains(where: { self.name(name, equalsLowercase: $0) }), !isHopByHop(name), !isGatewayOwned(name) else { return }
                head.append(name)
                head.append(": ")
                head.append(value)
                head.append("\r\n")
            }
            head.append("Host: ")
            head.append(upstreamHost)
            if let upstreamKey {
                head.append("\r\nAuthorization: Bearer ")
                head.append(upstreamKey)
            }
            head.append("\r\nX-Request-Id: ")
            head.append(requestID)
            head.append("\r\nX-Forwarded-For: ")
            head.append(clientAddress)
            head.append("\r\nContent-Length: ")
            head.append(decimal: bodyLength)
            head.append("\r\n\r\n")
            return head.offset
        }
    }

    /// Fields only the gateway writes toward vLLM.
    static func isGatewayOwned(_ name: UnsafeRawBufferPointer) -> Bool {
        switch name.count {
        case 4: return self.name(name, is: "host")
        case 12: return self.name(name, is: "x-request-id")
        case 13: return self.name(name, is: "authorization")
        case 14: return self.name(name, is: "content-length")
        case 15: return self.name(name, is: "x-forwarded-for")
        default: return false
        }
    }

    /// The client's `X-Request-Id` when it is short and plain: echoed back and logged, never sent to vLLM (which
    /// would use it as its internal id, so one tenant could collide with another's).
    static func clientRequestID(_ supplied: String?) -> String? {
        guard let supplied, (1...128).contains(supplied.utf8.count),
              supplied.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E })
        else { return nil }
        return supplied
    }

    /// The client's address: the peer, or — only when the peer is a trusted proxy — the right-most untrusted
    /// address of `X-Forwarded-For` (every line of it, joined: a proxy may append its own line), as nginx's
    /// `real_ip_recursive`. `forwardedFor` is read only when the peer is trusted (most requests never look at the header).
    static func clientAddress(peer: IPAddress?, forwardedFor: @autoclosure () -> String?, trusted: [IPNetwork]) -> IPAddress? {
        guard let peer, trusted.contains(where: { $0.contains(peer) }), let forwardedFor = forwardedFor() else { return peer }
        var current = peer
        for hop in forwardedFor.split(separator: ",").reversed() {
            guard let address = IPAddress(String(hop.filter { $0 != " " && $0 != "\t" })) else { return current }
            current = address
            if !trusted.contains(where: { $0.contains(address) }) { return address }
        }
        return current
    }
}

/// Copies pieces of an HTTP head into memory measured beforehand (per-piece `writeString` calls cost more than the
/// copying). Each piece is checked against the memory's end before it is copied: a head longer than measured traps
/// instead of writing past it.
struct HeadBytes {
    private let base: UnsafeMutableRawPointer
    private let capacity: Int
    private(set) var offset = 0

    init(_ memory: UnsafeMutableRawBufferPointer) {
        base = memory.baseAddress!
        capacity = memory.count
    }

    /// Where the next `length` bytes go.
    @inline(__always)
    private mutating func take(_ length: Int) -> UnsafeMutableRawPointer {
        precondition(length <= capacity &- offset, "an HTTP head longer than measured")
        defer { offset += length }
        return base + offset
    }

    @inline(__always)
    mutating func append(_ text: StaticString) {
        take(text.utf8CodeUnitCount).copyMemory(from: text.utf8Start, byteCount: text.utf8CodeUnitCount)
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        let target = take(bytes.count)
        if let source = bytes.baseAddress { target.copyMemory(from: source, byteCount: bytes.count) }
    }

    mutating func append(_ text: String) {
        // The view's own storage (no copy of the string to make it mutable); a bridged string would take the loop.
        let copied: Void? = text.utf8.withContiguousStorageIfAvailable { utf8 in append(UnsafeRawBufferPointer(utf8)) }
        if copied == nil {
            for byte in text.utf8 { append(byte: byte) }
        }
    }

    mutating func append(byte: UInt8) {
        take(1).storeBytes(of: byte, as: UInt8.self)
    }

    /// A number in decimal; measure it as 20 bytes.
    mutating func append(decimal value: Int) {
        if value < 0 { append("-") }
        let digits = DecimalText.count(value.magnitude)
        DecimalText.write(value.magnitude, digits: digits, to: take(digits))
    }
}

import Synchronization

/// Request ids: 32 hex digits, a random per-process half and a counter — unique without a system call per request.
enum RequestIDs {
    private static let salt = Array(randomHex(bytes: 8).utf8)
    private static let counter = Atomic<UInt64>(0)
    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Written into the string's own storage: one allocation, no intermediate strings.
    static func next() -> String {
        let value = counter.wrappingAdd(1, ordering: .relaxed).newValue
        return String(unsafeUninitializedCapacity: 32) { bytes in
            for index in 0..<16 {
                bytes[index] = salt[index]
                bytes[16 + index] = hexDigits[Int(truncatingIfNeeded: value >> UInt64(60 - 4 * index)) & 0xF]
            }
            return 32
        }
    }
}

extension IPAddress {
    /// A TCP peer's address from the socket address's bytes, for every connection: NIO's text form costs an
    /// `inet_ntop` (and `sprintf`) and parsing it back an `inet_pton`.
    init?(peer: SocketAddress?) {
        switch peer {
        case .v4(let address):
            self.init(ipv4: UInt32(bigEndian: address.address.sin_addr.s_addr))
        case .v6(let address):
            var raw = address.address.sin6_addr
            self.init(ipv6: withUnsafeBytes(of: &raw) { Array($0) })
        default:
            return nil
        }
    }
}
