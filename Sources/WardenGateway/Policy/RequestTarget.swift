import WardenConfig

/// A request target after the gateway's canonicalisation: origin-form only, no ambiguity left to interpret.
///
/// Anything an upstream could read differently from the gateway — encoded slashes or dots, dot segments, `//`,
/// `;` parameters, backslashes, absolute-form, non-ASCII or control bytes — is refused rather than guessed.
public struct RequestTarget: Sendable, Equatable {
    public let path: String
    /// The query string without `?`, forwarded verbatim; `nil` when absent.
    public let query: String?

    public var uri: String { query.map { "\(path)?\($0)" } ?? path }

    public enum Rejection: String, Error, Sendable, Equatable {
        case notOriginForm = "the request target must be a path starting with /"
        case encoded = "percent-encoded characters are not accepted in the path"
        case dotSegment = "dot segments (/./ or /../) are not accepted in the path"
        case emptySegment = "empty path segments (//) are not accepted"
        case parameter = "path parameters (;) are not accepted"
        case backslash = "backslashes are not accepted in the path"
        case nonASCII = "non-ASCII or control characters are not accepted in the target"
        case fragment = "fragments (#) are not accepted in the target"
    }

    public init(_ uri: String) throws(Rejection) {
        let bytes = uri.utf8
        guard bytes.first == UInt8(ascii: "/") else { throw .notOriginForm }
        var pathEnd = bytes.endIndex
        var segmentStart = 0
        var position = 0
        var previous: UInt8 = 0
        for index in bytes.indices {
            let byte = bytes[index]
            guard byte > 0x20, byte < 0x7F else { throw .nonASCII }
            if byte == UInt8(ascii: "#") { throw .fragment }
            if pathEnd == bytes.endIndex {
                switch byte {
                case UInt8(ascii: "?"):
                    try Self.checkSegment(bytes, from: segmentStart, to: position, last: true)
                    pathEnd = index
                case UInt8(ascii: "%"): throw .encoded
                case UInt8(ascii: "\\"): throw .backslash
                case UInt8(ascii: ";"): throw .parameter
                case UInt8(ascii: "/"):
                    if position > 0 {
                        if previous == UInt8(ascii: "/") { throw .emptySegment }
                        try Self.checkSegment(bytes, from: segmentStart, to: position, last: false)
                    }
                    segmentStart = position + 1
                default: break
                }
            }
            previous = byte
            position += 1
        }
        if pathEnd == bytes.endIndex { try Self.checkSegment(bytes, from: segmentStart, to: position, last: true) }
        path = String(uri[..<pathEnd])
        query = pathEnd == bytes.endIndex ? nil : String(uri[uri.utf8.index(after: pathEnd)...])
    }

    /// A segment of `.` or `..` is a dot segment; an empty one is only allowed last (a trailing slash).
    private static func checkSegment(_ bytes: String.UTF8View, from start: Int, to end: Int, last: Bool) throws(Rejection) {
        let length = end - start
        if length == 0 { return }
        let first = bytes[bytes.index(bytes.startIndex, offsetBy: start)]
        if first == UInt8(ascii: "."), length <= 2 {
            if length == 1 || bytes[bytes.index(bytes.startIndex, offsetBy: start + 1)] == UInt8(ascii: ".") { throw .dotSegment }
        }
    }
}

/// An allow-listed route as admission uses it.
public struct AllowedRoute: Sendable, Equatable {
    /// `METHOD /path` as configured (templates keep their `{id}`): the metric label, bounded by the allow-list.
    public var template: RouteTemplate
    /// `nil` only for a route with an explicit cost.
    public var meter: RouteMeter?
    /// `gateway.route_costs` for this route.
    public var cost: Int?

    /// The path part of the label (`/v1/responses/{id}`).
    public var label: String { template.path }
}

/// The endpoints a gateway forwards: exact `METHOD /path` pairs, and templates whose `{id}` matches one segment.
public struct EndpointAllowList: Sendable, Equatable {
    /// Exact routes by path, then method: a lookup hashes the path as it is, with no `METHOD /path` key built.
    private let exact: [String: [AllowedRoute]]
    private let templated: [AllowedRoute]

    public init(_ entries: [String], costs: [String: Int] = [:]) {
        var exact: [String: [AllowedRoute]] = [:]
        var templated: [AllowedRoute] = []
        for entry in entries {
            guard let template = RouteTemplate(entry) else { continue }
            let route = AllowedRoute(template: template, meter: costs[template.description] == nil ? RouteCatalog.meter(for: template) : nil,
                                     cost: costs[template.description])
            if template.hasParameters {
                templated.append(route)
            } else {
                // A route listed twice keeps its last entry, as a dictionary keyed by the whole entry did.
                exact[template.path, default: []].removeAll { $0.template.method == template.method }
                exact[template.path, default: []].append(route)
            }
        }
        self.exact = exact
        self.templated = templated
    }

    /// The allowed route a canonical path falls under, if any.
    public func match(method: String, path: String) -> AllowedRoute? {
        if let route = exact[path]?.first(where: { $0.template.method == method }) { return route }
        return templated.first { $0.template.matches(method: method, path: path) }
    }

    public func allows(method: String, path: String) -> Bool { match(method: method, path: path) != nil }

    /// The metric label for a request: its route's path (templates as written), else `other` (labels stay bounded).
    public func route(method: String, path: String) -> String { match(method: method, path: path)?.label ?? "other" }
}
