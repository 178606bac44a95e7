import WardenConfig

/// A TCP socket in `LISTEN` state, from `/proc/net/tcp` or `/proc/net/tcp6`.
public struct ListeningSocket: Sendable, Equatable, CustomStringConvertible {
    public var address: String
    public var port: Int
    public var inode: UInt64

    /// Reachable only from this machine.
    public var isLoopback: Bool { isLoopbackHost(address) }
    public var description: String { address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)" }

    /// Every listening socket the host shows.
    static func all(host: any AuditHost) -> [ListeningSocket] {
        ["/proc/net/tcp", "/proc/net/tcp6"].flatMap { path in
            host.readFile(path, limit: 8 << 20).map { parse(String(decoding: $0, as: UTF8.self)) } ?? []
        }
    }

    /// Rows of `/proc/net/tcp*`: `sl local_address rem_address st … inode`; state `0A` is LISTEN.
    static func parse(_ table: String) -> [ListeningSocket] {
        table.split(separator: "\n").dropFirst().compactMap { row in
            let fields = row.split(separator: " ")
            guard fields.count > 9, fields[3] == "0A" else { return nil }
            let local = fields[1].split(separator: ":")
            guard local.count == 2, let port = Int(local[1], radix: 16), let inode = UInt64(fields[9]),
                  let address = decodeAddress(String(local[0])) else { return nil }
            return ListeningSocket(address: address, port: port, inode: inode)
        }
    }

    /// The kernel prints addresses as 32-bit words in host (little-endian) order.
    static func decodeAddress(_ hex: String) -> String? {
        guard hex.count == 8 || hex.count == 32 else { return nil }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 8)
            guard let word = UInt32(hex[index..<next], radix: 16) else { return nil }
            bytes += [UInt8(word & 0xFF), UInt8(word >> 8 & 0xFF), UInt8(word >> 16 & 0xFF), UInt8(word >> 24)]
            index = next
        }
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        let groups = stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
        return IPAddress(groups.joined(separator: ":"))?.description
    }
}
