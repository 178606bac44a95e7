import WardenJSON

/// A chat or completion request after vLLM's validation: everything the generator needs, nothing else.
struct GenerationRequest {
    enum Kind { case chat, completion, responses, messages }

    struct Prompt {
        var text: String
        var tokenCount: Int
    }

    var kind: Kind
    /// Echoed in every response's `model`.
    var model: String
    var prompts: [Prompt]
    var stream: Bool
    var includeUsage: Bool
    var continuousUsage: Bool
    var n: Int
    var maxTokens: Int
    var ignoreEOS: Bool
    /// Responses API: the stored response continued, and whether it runs in the background.
    var previousResponseID: String?
    var background = false
    /// Responses API: the request's `tools`, as JSON; vLLM echoes them in the response object (`tools=request.tools`).
    var tools = "[]"

    var promptTokens: Int { prompts.reduce(0) { $0 + $1.tokenCount } }

    /// vLLM's cap on `n` (`VLLM_MAX_N_SEQUENCES`).
    static let maxSequences = 16_384
    /// `CompletionRequest.max_tokens`' default in vLLM's protocol.
    static let completionsDefaultMaxTokens = 16

    /// Validates a request body the way vLLM's protocol models and serving layer do.
    static func parse(_ body: JSONValue, kind: Kind, configuration: SimulatorConfiguration, batch: Bool = false,
                      storedContext: (String) -> String? = { _ in nil }) throws(SimulatorError) -> GenerationRequest {
        guard case .object = body else { throw .validation("", "Input should be a valid dictionary or object") }
        var model = configuration.servedModelName
        if let value = body["model"], !value.isNull {
            guard let name = value.stringValue else { throw .validation("model", "Input should be a valid string") }
            guard name == configuration.servedModelName else { throw .unknownModel(name) }
            model = name
        }
        let prompts: [Prompt]
        var previousResponseID: String?
        switch kind {
        case .chat: prompts = batch ? try batchPrompts(body) : [try chatPrompt(body)]
        case .completion: prompts = try completionPrompts(body)
        case .responses:
            previousResponseID = try optionalString(body, "previous_response_id")
            var context = ""
            if let previous = previousResponseID {
                guard let stored = storedContext(previous) else {
                    throw SimulatorError(status: 404, type: "invalid_request_error", message: "Response with id '\(previous)' not found.", param: nil)
                }
                context = stored
            }
            prompts = [try NamedRequests.responsesPrompt(body, context: context)]
        case .messages: prompts = [try NamedRequests.messagesPrompt(body)]
        }

        let stream = try optionalBool(body, "stream") ?? false
        var includeUsage = false
        var continuousUsage = false
        if let options = body["stream_options"], !options.isNull {
            guard stream else { throw .badRequest("Stream options can only be defined when `stream=True`.", param: "stream_options") }
            guard case .object = options else { throw .validation("stream_options", "Input should be a valid dictionary or object") }
            // vLLM's StreamOptions: include_usage defaults to true, continuous_usage_stats to false.
            includeUsage = try optionalBool(options, "include_usage", location: "stream_options.include_usage") ?? true
            // vLLM only honours continuous usage together with include_usage.
            let continuous = try optionalBool(options, "continuous_usage_stats", location: "stream_options.continuous_usage_stats")
            continuousUsage = includeUsage && (continuous ?? false)
        }

        let n = try optionalInt(body, "n") ?? 1
        guard n >= 1 else { throw .badRequest("n must be at least 1, got \(n).", param: "n") }
        guard n <= maxSequences else { throw .badRequest("n must be at most \(maxSequences), got \(n).", param: "n") }

        if batch, stream { throw .badRequest("Streaming is not supported for batched chat completions.", param: "stream") }
        let requested: Int?
        switch kind {
        case .responses:
            requested = try optionalInt(body, "max_output_tokens")
        case .messages:
            guard let cap = try optionalInt(body, "max_tokens") else { throw .validation("max_tokens", "Field required") }
            requested = cap
        case .chat:
            // max_completion_tokens wins; a null one falls through to max_tokens.
            let completionCap = try optionalInt(body, "max_completion_tokens")
            let legacyCap = try optionalInt(body, "max_tokens")
            requested = completionCap ?? legacyCap
        case .completion:
            // Completions read max_tokens only: 16 when absent, the context length when explicitly null.
            if let value = body["max_tokens"] {
                requested = value.isNull ? nil : try optionalInt(body, "max_tokens")
            } else {
                requested = completionsDefaultMaxTokens
            }
        }
        if let requested, requested < 1 { throw .badRequest("max_tokens must be at least 1, got \(requested).", param: "max_tokens") }
        let maxModelLen = configuration.maxModelLen
        var maxTokens = requested ?? 0
        for prompt in prompts {
            if prompt.tokenCount >= maxModelLen {
                throw .badRequest("This model's maximum context length is \(maxModelLen) tokens. However, your request has \(prompt.tokenCount) input tokens. Please reduce the length of the input messages.")
            }
            if let requested, prompt.tokenCount + requested > maxModelLen {
                throw .badRequest("This model's maximum context length is \(maxModelLen) tokens. However, you requested \(prompt.tokenCount + requested) tokens (\(prompt.tokenCount) in the messages, \(requested) in the completion). Please reduce the length of the messages or completion.")
            }
            if requested == nil { maxTokens = max(maxTokens, maxModelLen - prompt.tokenCount) }
        }
        let ignoreEOS = try optionalBool(body, "ignore_eos") ?? false
        return GenerationRequest(kind: kind, model: model, prompts: prompts, stream: stream, includeUsage: includeUsage,
                                 continuousUsage: continuousUsage, n: n, maxTokens: maxTokens, ignoreEOS: ignoreEOS,
                                 previousResponseID: previousResponseID, background: try optionalBool(body, "background") ?? false,
                                 tools: body["tools"].flatMap { $0.arrayValue == nil ? nil : $0.serialized } ?? "[]")
    }

    /// `/v1/chat/completions/batch`: `messages` is a list of conversations, one prompt each.
    private static func batchPrompts(_ body: JSONValue) throws(SimulatorError) -> [Prompt] {
        guard let conversations = body["messages"]?.arrayValue, !conversations.isEmpty else {
            throw .validation("messages", "Input should be a non-empty list of conversations")
        }
        var prompts: [Prompt] = []
        for (index, conversation) in conversations.enumerated() {
            guard conversation.arrayValue != nil else { throw .validation("messages.\(index)", "Input should be a valid list") }
            prompts.append(try chatPrompt(.object([("messages", conversation)])))
        }
        return prompts
    }

    static func chatPrompt(_ body: JSONValue) throws(SimulatorError) -> Prompt {
        guard let messages = body["messages"] else { throw .validation("messages", "Field required") }
        guard let list = messages.arrayValue else { throw .validation("messages", "Input should be a valid list") }
        var parsed: [ChatMessage] = []
        for (index, message) in list.enumerated() {
            guard case .object = message else { throw .validation("messages.\(index)", "Input should be a valid dictionary") }
            guard let role = message["role"]?.stringValue else { throw .validation("messages.\(index).role", "Field required") }
            parsed.append(ChatMessage(role: role, content: try contentText(message["content"], location: "messages.\(index).content")))
        }
        let addGenerationPrompt = try optionalBool(body, "add_generation_prompt") ?? true
        let text = FakeTokenizer.chatPrompt(parsed, addGenerationPrompt: addGenerationPrompt)
        return Prompt(text: text, tokenCount: FakeTokenizer.count(text, addSpecialTokens: false))
    }

    /// Message content: a string, null, or a list of parts whose `text` parts are joined.
    static func contentText(_ content: JSONValue?, location: String) throws(SimulatorError) -> String {
        guard let content, !content.isNull else { return "" }
        if let text = content.stringValue { return text }
        guard let parts = content.arrayValue else { throw .validation(location, "Input should be a valid string or list of content parts") }
        var text = ""
        for (index, part) in parts.enumerated() {
            guard case .object = part, let type = part["type"]?.stringValue else {
                throw .validation("\(location).\(index)", "Input should be a content part with a `type`")
            }
            if type == "text" {
                guard let partText = part["text"]?.stringValue else { throw .validation("\(location).\(index).text", "Field required") }
                text += partText
            }
        }
        return text
    }

    private static func completionPrompts(_ body: JSONValue) throws(SimulatorError) -> [Prompt] {
        guard let prompt = body["prompt"], !prompt.isNull else {
            throw .badRequest("Either prompt or prompt_embeds must be provided and non-empty.")
        }
        if let text = prompt.stringValue {
            return [Prompt(text: text, tokenCount: FakeTokenizer.count(text, addSpecialTokens: true))]
        }
        guard let items = prompt.arrayValue, !items.isEmpty else {
            throw .badRequest("Either prompt or prompt_embeds must be provided and non-empty.")
        }
        if items.allSatisfy({ $0.intValue != nil }) {
            return [try tokenPrompt(items)]
        }
        var prompts: [Prompt] = []
        for (index, item) in items.enumerated() {
            if let text = item.stringValue {
                prompts.append(Prompt(text: text, tokenCount: FakeTokenizer.count(text, addSpecialTokens: true)))
            } else if let tokens = item.arrayValue, tokens.allSatisfy({ $0.intValue != nil }) {
                prompts.append(try tokenPrompt(tokens))
            } else {
                throw .validation("prompt.\(index)", "Input should be a valid string or list of token ids")
            }
        }
        return prompts
    }

    private static func tokenPrompt(_ tokens: [JSONValue]) throws(SimulatorError) -> Prompt {
        let ids = tokens.compactMap(\.intValue)
        return Prompt(text: ids.map(String.init).joined(separator: ","), tokenCount: ids.count)
    }

    static func optionalBool(_ object: JSONValue, _ key: String, location: String? = nil) throws(SimulatorError) -> Bool? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let flag = value.boolValue else { throw .validation(location ?? key, "Input should be a valid boolean") }
        return flag
    }

    static func optionalString(_ object: JSONValue, _ key: String) throws(SimulatorError) -> String? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let text = value.stringValue else { throw .validation(key, "Input should be a valid string") }
        return text
    }

    static func optionalInt(_ object: JSONValue, _ key: String) throws(SimulatorError) -> Int? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let number = value.intValue else { throw .validation(key, "Input should be a valid integer") }
        return number
    }
}
