import WardenJSON

import WardenConfig

/// What the gateway reads from an inference body before forwarding it: the fields that decide authorisation,
/// accounting and streaming. Malformed bodies stop here with a 400 and never reach vLLM.
public struct InferenceRequest: Sendable {
    /// The model the request will run on (the body's, else the served model vLLM defaults to).
    public var model: String
    public var stream: Bool
    /// Usage the client will receive on a stream, with vLLM's semantics (`stream_options: {}` means `include_usage`).
    public var clientIncludesUsage: Bool
    /// The most this request can cost, as vLLM would run it.
    public var budget: TokenBudget
    public var body: JSONValue
    /// The field that carries the completion cap the gateway writes when the client set none.
    public var capField = "max_tokens"
    /// Responses API: the stored response whose context vLLM prepends.
    public var previousResponseID: String?
    /// Responses API: vLLM generates after the POST returns.
    public var background = false
    /// Embeddings and pooling: how the response carries its usage.
    public var encoding = PoolingEncoding.json

    /// Pooling responses: JSON with `usage`; raw bytes with usage in the `metadata` header; raw bytes without usage.
    public enum PoolingEncoding: Sendable { case json, bytes, bytesOnly }

    /// Largest `n` (and `best_of`) accepted: one request must not fan out into hundreds of sequences.
    public static let maxChoices = 16
    /// vLLM's default `max_tokens` on `/v1/completions` (its protocol model's default).
    public static let completionsDefaultMaxTokens = 16

    /// Parses and validates a JSON body for `meter`. `defaultMaxTokens` is the cap given to a request that sets
    /// none (vLLM would otherwise generate up to the context length); `contextLength` is the model's, when known.
    public static func parse(_ bytes: some Collection<UInt8>, meter: RouteMeter, servedModel: String,
                             defaultMaxTokens: Int, contextLength: Int? = nil) throws(GatewayError) -> InferenceRequest {
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
        var includesUsage = false
        if let options = body["stream_options"], !options.isNull {
            guard case .object = options else { throw typeError("stream_options", "an object") }
            // vLLM's StreamOptions defaults include_usage to true: `{}` asks for usage.
            includesUsage = try optional(options, "include_usage", "a boolean", param: "stream_options.include_usage") { $0.boolValue } ?? true
        }
        var request = InferenceRequest(model: model, stream: stream, clientIncludesUsage: stream && includesUsage,
                                       budget: TokenBudget(promptTokens: 0, sequences: 0, cap: .limited(0), defaultCap: 0), body: body)
        switch meter {
        case .chat:
            try requireArray(body, "messages")
            // Chat reads max_completion_tokens first, then the older max_tokens (`null` falls through, as in vLLM).
            var cap = try maxTokens(body, "max_completion_tokens")
            if case .limited = cap {} else { cap = try maxTokens(body, "max_tokens") }
            request.budget = TokenBudget(promptTokens: chatPromptEstimate(body), sequences: try choices(body), cap: cap, defaultCap: defaultMaxTokens)
        case .completions:
            guard let prompt = body["prompt"], !prompt.isNull else { throw .badRequest("`prompt` is required.", code: "missing_field", param: "prompt") }
            let prompts = try promptList(prompt, param: "prompt")
            // Completions read max_tokens only (max_completion_tokens is ignored there); vLLM's default is 16.
            var cap = try maxTokens(body, "max_tokens")
            if case .unset = cap { cap = .limited(completionsDefaultMaxTokens) }
            request.budget = TokenBudget(promptTokens: prompts.tokens, sequences: prompts.count.saturatingMultiplied(by: try choices(body)),
                                         cap: cap, defaultCap: defaultMaxTokens)
        default:
            try RouteBudgets.parse(&request, meter: meter, defaultMaxTokens: defaultMaxTokens, contextLength: contextLength)
        }
        // Images, audio and video become prompt tokens no text estimate sees: each is reserved at what one image
        // costs on common vision models, at most the model's whole context when the deployment says what that is.
        let media = mediaParts(body)
        if media > 0 {
            let allowance = media.saturatingMultiplied(by: mediaPartTokens)
            request.budget.promptTokens = request.budget.promptTokens.saturatingAdded(contextLength.map { min(allowance, $0) } ?? allowance)
        }
        return request
    }

    /// Prompt tokens reserved per image, audio clip or video: Qwen2.5-VL's image at its default `max_pixels`.
    public static let mediaPartTokens = 16_384

    /// Member names under which a prompt carries media for vLLM to encode (chat and Responses content parts,
    /// Anthropic's `source` blocks, Cohere's `images`). Compared by length first, as ``isPromptField``: it runs for
    /// every member on the prompt's path of every request.
    static func isMediaField(_ key: String) -> Bool {
        switch key.utf8.count {
        case 6: key == "images" || key == "source"
        case 9: key == "image_url" || key == "audio_url" || key == "video_url" || key == "image_pil"
        case 11: key == "input_image" || key == "input_audio"
        case 12: key == "image_embeds" || key == "audio_embeds"
        default: false
        }
    }

    /// The media parts of the prompt: one per media member, or per item of a list of them, found where the prompt
    /// text is (through the prompt fields only, so a tool's or a schema's property named `image_url` is no image).
    static func mediaParts(_ value: JSONValue) -> Int {
        switch value {
        case .array(let items): return items.reduce(0) { $0.saturatingAdded(mediaParts($1)) }
        case .object(let members):
            return members.reduce(0) { total, member in
                if isMediaField(member.key) {
                    return total.saturatingAdded(member.value.arrayValue.map { max(1, $0.count) } ?? (member.value.isNull ? 0 : 1))
                }
                return isPromptField(member.key) ? total.saturatingAdded(mediaParts(member.value)) : total
            }
        default: return 0
        }
    }

    /// `n`, or `best_of` when larger: the sequences generated per prompt.
    static func choices(_ body: JSONValue) throws(GatewayError) -> Int { max(try count(body, "n"), try count(body, "best_of")) }

    static func requireArray(_ body: JSONValue, _ key: String) throws(GatewayError) {
        guard let value = body[key] else { throw .badRequest("`\(key)` is required.", code: "missing_field", param: key) }
        guard value.arrayValue != nil else { throw typeError(key, "an array") }
    }

    /// A completion cap as the client set it.
    enum Cap {
        /// Absent: the endpoint's default applies.
        case unset
        /// Explicitly `null`: vLLM generates up to the context length.
        case unlimited
        case limited(Int)
    }

    static func maxTokens(_ body: JSONValue, _ key: String) throws(GatewayError) -> Cap {
        guard let value = body[key] else { return .unset }
        if value.isNull { return .unlimited }
        guard let number = value.intValue else { throw typeError(key, "an integer") }
        guard number >= 1 else { throw .badRequest("`\(key)` must be at least 1.", code: "invalid_value", param: key) }
        return .limited(number)
    }

    /// `n` or `best_of`: 1 when absent, else 1 to ``maxChoices``.
    private static func count(_ body: JSONValue, _ key: String) throws(GatewayError) -> Int {
        let value = try optional(body, key, "an integer") { $0.intValue } ?? 1
        guard (1...maxChoices).contains(value) else {
            throw .badRequest("`\(key)` must be from 1 to \(maxChoices).", code: "invalid_value", param: key)
        }
        return value
    }

    /// A prompt or embedding input: a string, token ids, or a list of either (one sequence each).
    static func promptList(_ value: JSONValue, param: String) throws(GatewayError) -> (count: Int, tokens: Int) {
        if let text = value.stringValue { return (1, text.utf8.count / 4 + 1) }
        guard let items = value.arrayValue, !items.isEmpty else { throw typeError(param, "a non-empty string or array") }
        if items.allSatisfy({ $0.intValue != nil }) { return (1, items.count) }
        var tokens = 0
        for item in items {
            if let text = item.stringValue {
                tokens = tokens.saturatingAdded(text.utf8.count / 4 + 1)
            } else if let ids = item.arrayValue, !ids.isEmpty, ids.allSatisfy({ $0.intValue != nil }) {
                tokens = tokens.saturatingAdded(ids.count)
            } else {
                throw typeError(param, "a string, an array of token ids, or a list of those")
            }
        }
        return (items.count, tokens)
    }

    /// Messages and tool definitions: UTF-8 bytes / 4, plus a few tokens of chat template per message.
    static func chatPromptEstimate(_ body: JSONValue, messages key: String = "messages") -> Int {
        let messages = body[key]?.arrayValue ?? []
        let tools = body["tools"].map { $0.serialized.utf8.count / 4 } ?? 0
        return (textBytes(body) / 4 + 1).saturatingAdded(messages.count.saturatingMultiplied(by: 4)).saturatingAdded(tools)
    }

    static func optional<T>(_ object: JSONValue, _ key: String, _ expected: String, param: String? = nil,
                                    _ read: (JSONValue) -> T?) throws(GatewayError) -> T? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let typed = read(value) else { throw typeError(param ?? key, expected) }
        return typed
    }

    static func typeError(_ param: String, _ expected: String) -> GatewayError {
        .badRequest("`\(param)` must be \(expected).", code: "invalid_type", param: param)
    }

    /// Fields whose strings vLLM turns into prompt tokens, on any route. Compared rather than hashed, and only with
    /// the names of the same length: every member name of every body is looked up.
    static func isPromptField(_ key: String) -> Bool {
        switch key.utf8.count {
        case 4: key == "text"
        case 5: key == "input" || key == "query" || key == "texts"
        case 6: key == "prompt" || key == "system" || key == "text_1" || key == "text_2" || key == "inputs" || key == "data_1" || key == "data_2"
            || key == "output"
        case 7: key == "content" || key == "queries"
        case 8: key == "messages" || key == "function"
        case 9: key == "documents" || key == "arguments" || key == "reasoning"
        case 10: key == "tool_calls"
        case 12: key == "instructions"
        case 17: key == "reasoning_content"
        default: false
        }
    }

    /// UTF-8 bytes of every string in a value, keys included.
    static func allStringBytes(_ value: JSONValue) -> Int {
        switch value {
        case .string(let text): return text.utf8.count
        case .array(let items): return items.reduce(0) { $0.saturatingAdded(allStringBytes($1)) }
        case .object(let members): return members.reduce(0) { $0.saturatingAdded($1.key.utf8.count).saturatingAdded(allStringBytes($1.value)) }
        default: return 0
        }
    }

    /// UTF-8 bytes of every string in the prompt-bearing fields.
    static func textBytes(_ value: JSONValue) -> Int {
        switch value {
        case .string(let text): return text.utf8.count
        case .array(let items): return items.reduce(0) { $0.saturatingAdded(textBytes($1)) }
        case .object(let members):
            return members.reduce(0) { total, member in
                // Whatever a client passes to the chat template may be rendered into the prompt.
                if member.key.utf8.count == 20, member.key == "chat_template_kwargs" { return total.saturatingAdded(allStringBytes(member.value)) }
                return isPromptField(member.key) ? total.saturatingAdded(textBytes(member.value)) : total
            }
        default: return 0
        }
    }
}

/// The most a request may cost in tokens: what admission reserves, and what an ending the gateway cannot account
/// for exactly is charged. Every product saturates: no number a client sends can trap.
public struct TokenBudget: Sendable, Equatable {
    /// Estimated prompt tokens of all prompts together.
    public var promptTokens: Int
    /// Sequences vLLM generates: prompts × choices (`n`, or `best_of` when larger).
    public var sequences: Int
    /// Most tokens one sequence may generate.
    public var completionCap: Int
    /// The cap the gateway writes into the request because the client set none, else `nil`.
    public var injectedCap: Int?

    init(promptTokens: Int, sequences: Int, cap: InferenceRequest.Cap, defaultCap: Int) {
        self.promptTokens = promptTokens
        self.sequences = sequences
        switch cap {
        case .limited(let value): completionCap = value
        case .unset, .unlimited:
            completionCap = defaultCap
            injectedCap = sequences > 0 ? defaultCap : nil
        }
    }

    /// Most completion tokens vLLM may generate for the request.
    public var completionTokens: Int { completionCap.saturatingMultiplied(by: sequences) }

    /// Prompt estimate plus every sequence generated to its cap.
    public var worstCase: Int { promptTokens.saturatingAdded(completionTokens) }
}

extension Int {
    /// `self + other`, clamped to `Int.max` instead of trapping.
    func saturatingAdded(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }

    /// `self × other` for non-negative operands, clamped to `Int.max` instead of trapping.
    func saturatingMultiplied(by other: Int) -> Int {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? .max : product
    }
}
