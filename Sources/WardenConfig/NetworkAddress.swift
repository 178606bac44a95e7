#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address held as 16 bytes (IPv4 as `::ffff:a.b.c.d`), so one type serves matching and grouping.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// Network-order bytes; IPv4 addresses are IPv4-mapped.
    public let bytes: [UInt8]
    public let isIPv4: Bool

    /// An IPv4 address from its 32-bit value (host order).
    public init(ipv4 value: UInt32) {
        bytes = Array(repeating: 0, count: 10) + [0xFF, 0xFF, UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
        isIPv4 = true
    }

    /// An address from its 16 network-order bytes; an IPv4-mapped one (`::ffff:a.b.c.d`) is IPv4.
    public init(ipv6 raw: [UInt8]) {
        precondition(raw.count == 16, "an IPv6 address is 16 bytes")
        bytes = raw
        isIPv4 = raw.prefix(10).allSatisfy { $0 == 0 } && raw[10] == 0xFF && raw[11] == 0xFF
    }

    /// Parses dotted IPv4 or textual IPv6 (with or without brackets); `nil` otherwise.
    public init?(_ text: String) {
        var trimmed = Substring(text)
        if trimmed.hasPrefix("["), trimmed.hasSuffix("]") { trimmed = trimmed.dropFirst().dropLast() }
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, String(trimmed), &v4) == 1 {
            self.init(ipv4: UInt32(bigEndian: v4.s_addr))
        } else if inet_pton(AF_INET6, String(trimmed), &v6) == 1 {
            self.init(ipv6: withUnsafeBytes(of: &v6) { Array($0) })
        } else {
            return nil
        }
    }

    /// 127.0.0.0/8 or ::1: reachable from this machine only.
    public var isLoopback: Bool { isIPv4 ? bytes[12] == 127 : bytes.dropLast().allSatisfy { $0 == 0 } && bytes[15] == 1 }

    public var description: String {
        if isIPv4 {
            // Digits written straight into the string's own storage (at most 15 bytes, so no allocation): the gateway
            // formats every new connection's peer, where four strings joined cost it 2.4k instructions.
            return String(unsafeUninitializedCapacity: 15) { text in
                var count = 0
                for (index, octet) in bytes.suffix(4).enumerated() {
                    if index > 0 { text[count] = UInt8(ascii: "."); count += 1 }
                    if octet >= 100 { text[count] = UInt8(ascii: "0") + octet / 100; count += 1 }
                    if octet >= 10 { text[count] = UInt8(ascii: "0") + octet / 10 % 10; count += 1 }
                    text[count] = UInt8(ascii: "0") + octet % 10
                    count += 1
                }
                return count
            }
        }
        var address = in6_addr()
        withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count))
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// An address prefix such as `10.0.0.0/8` or `fd00::/8`; a bare address is a network of one.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    /// Prefix length counted on the 128-bit form (IPv4 `/8` is stored as `/104`).
    public let prefixLength: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        // `::ffff:10.0.0.0/104` is written in IPv6 terms even though it holds an IPv4 address.
        let countsIPv4Bits = address.isIPv4 && !parts[0].contains(":")
        let width = countsIPv4Bits ? 32 : 128
        var length = width
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), (0...width).contains(parsed) else { return nil }
            length = parsed
        }
        self.address = address
        self.prefixLength = length + (countsIPv4Bits ? 96 : 0)
    }

    public func contains(_ candidate: IPAddress) -> Bool {
        var remaining = prefixLength
        for index in 0..<16 where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if address.bytes[index] & mask != candidate.bytes[index] & mask { return false }
            remaining -= bits
        }
        return true
    }

    public var description: String {
        "\(address)/\(address.isIPv4 && prefixLength >= 96 ? prefixLength - 96 : prefixLength)"
    }

    /// Bits set past the prefix (`10.0.0.1/8`): the network is still `10.0.0.0/8`, which is rarely what was meant.
    public var hasHostBits: Bool {
        (0..<16).contains { index in
            let kept = max(0, min(8, prefixLength - index * 8))
            return address.bytes[index] & ~UInt8(truncatingIfNeeded: 0xFF << (8 - kept)) != 0
        }
    }
}

/// `host:port` for a listener; IPv6 hosts in brackets (`[::1]:9091`).
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init?(_ text: String) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
            guard IPAddress(String(hostPart)) != nil else { return nil }
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            guard !hostPart.contains(":"), isValidHost(String(hostPart)) else { return nil }
        }
        guard let port = Int(portPart), (1...65_535).contains(port) else { return nil }
        self.host = String(hostPart)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// `http://host:port` split into parts.
public struct UpstreamAddress: Sendable {
    public let host: String
    public let port: Int

    public init?(_ url: String) {
        guard url.hasPrefix("http://") else { return nil }
        var authority = url.dropFirst("http://".count).prefix { $0 != "/" }
        var host: Substring
        var port = 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            authority = authority[authority.index(after: close)...]
            if authority.hasPrefix(":") { port = Int(authority.dropFirst()) ?? -1 }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            port = Int(authority[authority.index(after: colon)...]) ?? -1
        } else {
            host = authority
        }
        guard !host.isEmpty, (1...65_535).contains(port) else { return nil }
        self.host = String(host)
        self.port = port
    }
}

/// A host name or address that only this machine reaches (`localhost` however written, 127.0.0.0/8, ::1).
public func isLoopbackHost(_ host: String) -> Bool {
    var name = host.lowercased()
    if name.hasSuffix(".") { name.removeLast() }
    return ["localhost", "ip6-localhost", "ip6-loopback"].contains(name) || name.hasSuffix(".localhost") || IPAddress(name)?.isLoopback == true
}
