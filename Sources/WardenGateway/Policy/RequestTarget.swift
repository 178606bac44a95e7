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
        let bytes = Array(uri.utf8)
        guard bytes.first == UInt8(ascii: "/") else { throw .notOriginForm }
        guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw .nonASCII }
        guard !bytes.contains(UInt8(ascii: "#")) else { throw .fragment }
        let split = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = split[0]
        guard !path.contains("%") else { throw .encoded }
        guard !path.contains("\\") else { throw .backslash }
        guard !path.contains(";") else { throw .parameter }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        for (index, segment) in segments.enumerated() {
            if segment == "." || segment == ".." { throw .dotSegment }
            if segment.isEmpty && index < segments.count - 1 { throw .emptySegment }
        }
        self.path = String(path)
        self.query = split.count == 2 ? String(split[1]) : nil
    }
}

/// The endpoints a gateway forwards: exact `METHOD /path` pairs.
public struct EndpointAllowList: Sendable, Equatable {
    private let entries: Set<String>

    public init(_ entries: [String]) {
        self.entries = Set(entries.map { entry in
            let parts = entry.split(separator: " ", omittingEmptySubsequences: true)
            return parts.count == 2 ? "\(parts[0]) \(parts[1])" : entry
        })
    }

    public func allows(method: String, path: String) -> Bool { entries.contains("\(method) \(path)") }
}
