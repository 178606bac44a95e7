/// How the gateway meters one vLLM route: what it reserves from the request, and how it reads the usage vLLM
/// reports back. Every allowed route needs one (or an explicit `gateway.route_costs` entry): a route allowed
/// without a meter would be a hole in every key's token limit.
public enum RouteMeter: String, Sendable, CaseIterable {
    /// `/v1/chat/completions`: messages × `n` choices × the completion cap; OpenAI usage.
    case chat
    /// `/v1/completions`: prompts × `n` × `max_tokens` (default 16); OpenAI usage.
    case completions
    /// `/v1/chat/completions/batch`: conversations × `n` × the cap; OpenAI usage (never streamed).
    case batchChat = "batch_chat"
    /// `/v1/responses`: input (plus a previous response's context) + `max_output_tokens`; usage `input_tokens` /
    /// `output_tokens` on the response, or on `response.completed` when streamed.
    case responses
    /// `/v1/messages` (Anthropic): system + messages + `max_tokens`; usage in `message_delta` when streamed.
    case messages
    /// Embeddings and every pooling route (rerank, score, classify, pooling): every input and document counted;
    /// input-only usage, in the body or (for `encoding_format: bytes`) in the `metadata` header.
    case pooling
    /// `/v1/audio/transcriptions|translations` (multipart): `gateway.audio_tokens_per_second` × the audio's length.
    case audio
    /// Routes where vLLM generates nothing (model lists, tokenize, render, stored responses): a request, no tokens.
    case requestOnly = "request_only"

    /// One line for the README and `config check`.
    public var summary: String {
        switch self {
        case .chat: "messages × n × max_completion_tokens/max_tokens; usage.prompt/completion_tokens"
        case .completions: "prompts × n × max_tokens (default 16); usage.prompt/completion_tokens"
        case .batchChat: "conversations × n × the cap; usage.prompt/completion_tokens"
        case .responses: "input + previous response + max_output_tokens; usage.input/output_tokens"
        case .messages: "system + messages + max_tokens; usage.input/output_tokens (message_delta)"
        case .pooling: "every input/query/document; input-only usage (body or metadata header)"
        case .audio: "audio_tokens_per_second × seconds of audio"
        case .requestOnly: "a request; no tokens"
        }
    }
}

/// `METHOD /path` where a `{name}` segment matches exactly one path segment (never `/`, never `.` or `..`).
public struct RouteTemplate: Sendable, Hashable, CustomStringConvertible {
    public enum Segment: Sendable, Hashable {
        case literal(String)
        case parameter
    }

    public let method: String
    public let path: String
    public let segments: [Segment]

    public static let methods: Set<String> = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

    /// Parses `POST /v1/chat/completions` or `GET /v1/responses/{id}`; `nil` when it is neither.
    public init?(_ entry: String) {
        let parts = entry.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, Self.methods.contains(String(parts[0])), parts[1].hasPrefix("/") else { return nil }
        var segments: [Segment] = []
        for piece in parts[1].dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            if piece.hasPrefix("{"), piece.hasSuffix("}"), piece.count > 2 {
                segments.append(.parameter)
            } else {
                guard !piece.isEmpty || segments.isEmpty, piece != ".", piece != "..",
                      piece.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && !"{}%;\\?#".utf8.contains($0) }) else { return nil }
                segments.append(.literal(String(piece)))
            }
        }
        method = String(parts[0])
        path = String(parts[1])
        self.segments = segments
    }

    public var description: String { "\(method) \(path)" }
    public var hasParameters: Bool { segments.contains(.parameter) }

    /// Whether a canonical path (already free of encoded characters and dot segments) matches.
    public func matches(method: String, path: String) -> Bool {
        guard method == self.method else { return false }
        var index = 0
        for piece in path.utf8.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            guard index < segments.count else { return false }
            switch segments[index] {
            case .literal(let literal):
                guard piece.elementsEqual(literal.utf8) else { return false }
            case .parameter:
                guard !piece.isEmpty, piece.allSatisfy(Self.isIdentifierByte), !piece.elementsEqual(".".utf8), !piece.elementsEqual("..".utf8) else {
                    return false
                }
            }
            index += 1
        }
        return index == segments.count
    }

    /// Bytes an id segment may hold: letters, digits, `-`, `_`, `.` (vLLM's ids are `resp_…`, `chatcmpl-…`).
    private static func isIdentifierByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
            true
        default: false
        }
    }
}

/// vLLM's routes (read in its source, `vllm/entrypoints/` and `vllm/frontend/`) with the meter each needs.
public enum RouteCatalog {
    public static let meters: [String: RouteMeter] = [
        "POST /v1/chat/completions": .chat,
        "POST /v1/completions": .completions,
        "POST /v1/chat/completions/batch": .batchChat,
        "POST /v1/responses": .responses,
        "GET /v1/responses/{id}": .requestOnly,
        "POST /v1/responses/{id}/cancel": .requestOnly,
        "POST /v1/messages": .messages,
        "POST /v1/messages/count_tokens": .requestOnly,
        "POST /v1/embeddings": .pooling,
        "POST /v2/embed": .pooling,
        "POST /v1/score": .pooling,
        "POST /v1/rerank": .pooling,
        "POST /v2/rerank": .pooling,
        "POST /score": .pooling,
        "POST /rerank": .pooling,
        "POST /pooling": .pooling,
        "POST /classify": .pooling,
        "POST /v1/audio/transcriptions": .audio,
        "POST /v1/audio/translations": .audio,
        "GET /v1/models": .requestOnly,
        "GET /v1/models/{id}": .requestOnly,
        "POST /tokenize": .requestOnly,
        "POST /detokenize": .requestOnly,
        "POST /v1/chat/completions/render": .requestOnly,
        "POST /v1/completions/render": .requestOnly,
        "GET /version": .requestOnly,
    ]

    /// The meter for an allow-list entry (`METHOD /path`, spaces normalised); `nil` when vLLM's route is unknown
    /// to Warden or cannot be metered (e.g. `/invocations`, which dispatches on the body).
    public static func meter(for template: RouteTemplate) -> RouteMeter? {
        if let meter = meters[template.description] { return meter }
        // `{id}` and `{response_id}` name the same segment.
        return meters.first { RouteTemplate($0.key)?.segments == template.segments && RouteTemplate($0.key)?.method == template.method }?.value
    }
}
