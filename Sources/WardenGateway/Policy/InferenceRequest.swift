import WardenJSON

/// What the gateway reads from an inference body before forwarding it: the fields that decide authorisation,
/// accounting and streaming. Malformed bodies stop here with a 400 and never reach vLLM.
public struct InferenceRequest: Sendable {
    /// The model the request will run on (the body's, else the served model vLLM defaults to).
    public var model: String
    public var stream: Bool
    public var n: Int
    /// `max_completion_tokens`, else `max_tokens`; `nil` when the client set neither.
    public var maxTokens: Int?
    public var clientIncludesUsage: Bool
    /// A cheap prompt-size estimate (UTF-8 bytes / 4 of the text fields).
    public var promptTokenEstimate: Int
    public var body: JSONValue

    /// Endpoints whose bodies are JSON and are validated; others (e.g. multipart audio) pass as they are.
    public static let jsonEndpoints: Set<String> = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses",
                                                    "/v1/messages", "/v1/messages/count_tokens", "/v1/score", "/v1/rerank", "/v2/rerank"]
    /// Largest `n` accepted: one request must not fan out into hundreds of sequences.
    public static let maxChoices = 16

    public static func parse(_ bytes: some Collection<UInt8>, path: String, servedModel: String) throws(GatewayError) -> InferenceRequest {
        let body: JSONValue
        do {
            body = try JSONValue.parse(bytes)
        } catch {
            throw .badRequest("The request body is not valid JSON (\(error.description)).", code: "invalid_json")
        }
        guard case .object = body else { throw .badRequest("The request body must be a JSON object.", code: "invalid_json") }
        var model = servedModel
        if let value = body["model"], !value.isNull {
            guard let name = value.stringValue else { throw typeError("model", "a string") }
            model = name
        }
        let stream = try optional(body, "stream", "a boolean") { $0.boolValue } ?? false
        let n = try optional(body, "n", "an integer") { $0.intValue } ?? 1
        guard (1...maxChoices).contains(n) else { throw .badRequest("`n` must be from 1 to \(maxChoices).", code: "invalid_value", param: "n") }
        let maxCompletion = try optional(body, "max_completion_tokens", "an integer") { $0.intValue }
        var maxTokens = maxCompletion
        if maxTokens == nil { maxTokens = try optional(body, "max_tokens", "an integer") { $0.intValue } }
        if let maxTokens, maxTokens < 1 { throw .badRequest("`max_tokens` must be at least 1.", code: "invalid_value", param: "max_tokens") }
        var includesUsage = false
        if let options = body["stream_options"], !options.isNull {
            guard case .object = options else { throw typeError("stream_options", "an object") }
            includesUsage = try optional(options, "include_usage", "a boolean", param: "stream_options.include_usage") { $0.boolValue } ?? false
        }
        switch path {
        case "/v1/chat/completions":
            guard let messages = body["messages"] else { throw .badRequest("`messages` is required.", code: "missing_field", param: "messages") }
            guard messages.arrayValue != nil else { throw typeError("messages", "an array") }
        case "/v1/completions":
            guard let prompt = body["prompt"], !prompt.isNull else { throw .badRequest("`prompt` is required.", code: "missing_field", param: "prompt") }
            guard prompt.stringValue != nil || prompt.arrayValue != nil else { throw typeError("prompt", "a string or an array") }
        case "/v1/embeddings":
            guard let input = body["input"], !input.isNull else { throw .badRequest("`input` is required.", code: "missing_field", param: "input") }
        default:
            break
        }
        return InferenceRequest(model: model, stream: stream, n: n, maxTokens: maxTokens, clientIncludesUsage: includesUsage,
                                promptTokenEstimate: textBytes(body) / 4 + 1, body: body)
    }

    private static func optional<T>(_ object: JSONValue, _ key: String, _ expected: String, param: String? = nil,
                                    _ read: (JSONValue) -> T?) throws(GatewayError) -> T? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let typed = read(value) else { throw typeError(param ?? key, expected) }
        return typed
    }

    private static func typeError(_ param: String, _ expected: String) -> GatewayError {
        .badRequest("`\(param)` must be \(expected).", code: "invalid_type", param: param)
    }

    /// UTF-8 bytes of every string in the prompt-bearing fields.
    static func textBytes(_ value: JSONValue) -> Int {
        switch value {
        case .string(let text): return text.utf8.count
        case .array(let items): return items.reduce(0) { $0 + textBytes($1) }
        case .object(let members):
            return members.reduce(0) { total, member in
                ["messages", "prompt", "input", "content", "text"].contains(member.key) ? total + textBytes(member.value) : total
            }
        default: return 0
        }
    }
}
