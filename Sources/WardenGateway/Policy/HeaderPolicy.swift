import NIOHTTP1
import WardenConfig

/// Header rules applied both ways: hop-by-hop headers never cross the gateway, identity headers are its own.
enum HeaderPolicy {
    /// RFC 9110 §7.6.1 connection-specific fields, plus the ones the gateway sets itself.
    static let hopByHop: Set<String> = ["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
                                        "te", "trailer", "transfer-encoding", "upgrade"]

    /// Removes hop-by-hop fields and any field named in `Connection`, in one pass.
    static func stripHopByHop(_ headers: inout HTTPHeaders) {
        headers = withoutHopByHop(headers, alsoDropping: [])
    }

    /// The fields of `headers` that may cross a proxy, minus `alsoDropping` (lower-case names).
    static func withoutHopByHop(_ headers: HTTPHeaders, alsoDropping: Set<String>) -> HTTPHeaders {
        var named: Set<String> = []
        for value in headers["connection"] {
            for token in value.split(separator: ",") { named.insert(String(token.filter { $0 != " " && $0 != "\t" }).lowercased()) }
        }
        var kept = HTTPHeaders()
        for (name, value) in headers {
            let lower = name.lowercased()
            if hopByHop.contains(lower) || alsoDropping.contains(lower) || (!named.isEmpty && named.contains(lower)) { continue }
            kept.add(name: name, value: value)
        }
        return kept
    }

    /// Client headers the gateway replaces with its own when forwarding.
    static let replacedUpstream: Set<String> = ["host", "content-length", "authorization", "x-forwarded-for", "x-real-ip", "forwarded",
                                                "x-request-id", "expect"]

    /// The headers sent to vLLM: the client's minus hop-by-hop, host, length and credentials, plus the gateway's.
    static func upstreamHeaders(from client: HTTPHeaders, upstreamHost: String, upstreamKey: String?, requestID: String,
                                clientAddress: String, bodyLength: Int) -> HTTPHeaders {
        var headers = withoutHopByHop(client, alsoDropping: replacedUpstream)
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
        return RequestIDs.next()
    }

    /// The client's address: the peer, or — only when the peer is a trusted proxy — the right-most untrusted
    /// address of `X-Forwarded-For`.
    static func clientAddress(peer: IPAddress?, forwardedFor: String?, trusted: [IPNetwork]) -> IPAddress? {
        guard let peer, trusted.contains(where: { $0.contains(peer) }), let forwardedFor else { return peer }
        var current = peer
        for hop in forwardedFor.split(separator: ",").reversed() {
            guard let address = IPAddress(String(hop.filter { $0 != " " && $0 != "\t" })) else { return current }
            current = address
            if !trusted.contains(where: { $0.contains(address) }) { return address }
        }
        return current
    }
}

import Synchronization

/// Request ids: 32 hex digits, a random per-process half and a counter — unique without a system call per request.
enum RequestIDs {
    private static let salt = randomHex(bytes: 8)
    private static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        let value = counter.wrappingAdd(1, ordering: .relaxed).newValue
        let hex = String(value, radix: 16)
        return salt + String(repeating: "0", count: 16 - hex.count) + hex
    }
}
