import NIOHTTP1
import WardenConfig

/// Header rules applied both ways: hop-by-hop headers never cross the gateway, identity headers are its own.
enum HeaderPolicy {
    /// RFC 9110 §7.6.1 connection-specific fields, plus the ones the gateway sets itself.
    static let hopByHop: Set<String> = ["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
                                        "te", "trailer", "transfer-encoding", "upgrade"]

    /// Removes hop-by-hop fields and any field named in `Connection`.
    static func stripHopByHop(_ headers: inout HTTPHeaders) {
        let named = headers["connection"].flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        for name in hopByHop.union(named) { headers.remove(name: name) }
    }

    /// The headers sent to vLLM: the client's minus hop-by-hop, host, length and credentials, plus the gateway's.
    static func upstreamHeaders(from client: HTTPHeaders, upstreamHost: String, upstreamKey: String?, requestID: String,
                                clientAddress: String, bodyLength: Int) -> HTTPHeaders {
        var headers = client
        stripHopByHop(&headers)
        for name in ["host", "content-length", "authorization", "x-forwarded-for", "x-real-ip", "forwarded", "x-request-id", "expect"] {
            headers.remove(name: name)
        }
        headers.add(name: "Host", value: upstreamHost)
        if let upstreamKey { headers.add(name: "Authorization", value: "Bearer \(upstreamKey)") }
        headers.add(name: "X-Request-Id", value: requestID)
        headers.add(name: "X-Forwarded-For", value: clientAddress)
        headers.add(name: "Content-Length", value: String(bodyLength))
        return headers
    }

    /// A client-supplied request id is kept when it is short and plain; otherwise the gateway makes one.
    static func requestID(from headers: HTTPHeaders) -> String {
        if let supplied = headers.first(name: "x-request-id"), (1...128).contains(supplied.utf8.count),
           supplied.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }) {
            return supplied
        }
        return randomHex(bytes: 16)
    }

    /// The client's address: the peer, or — only when the peer is a trusted proxy — the right-most untrusted
    /// address of `X-Forwarded-For`.
    static func clientAddress(peer: IPAddress?, forwardedFor: String?, trusted: [IPNetwork]) -> IPAddress? {
        guard let peer, trusted.contains(where: { $0.contains(peer) }), let forwardedFor else { return peer }
        var current = peer
        for hop in forwardedFor.split(separator: ",").reversed() {
            guard let address = IPAddress(hop.trimmingCharacters(in: .whitespaces)) else { return current }
            current = address
            if !trusted.contains(where: { $0.contains(address) }) { return address }
        }
        return current
    }
}

import Foundation
