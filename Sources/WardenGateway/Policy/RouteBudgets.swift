import WardenConfig
import WardenJSON

/// The reservations of the routes beyond chat and completions, each read from the fields vLLM reads on that
/// route (its protocol models in `vllm/entrypoints/`): what one request can cost at most.
enum RouteBudgets {
    static func parse(_ request: inout InferenceRequest, meter: RouteMeter, defaultMaxTokens: Int, contextLength: Int? = nil) throws(GatewayError) {
        let body = request.body
        switch meter {
        case .batchChat:
            request.budget = try batchChat(body, defaultMaxTokens: defaultMaxTokens)
        case .responses:
            try responses(&request, defaultMaxTokens: defaultMaxTokens)
        case .messages:
            try InferenceRequest.requireArray(body, "messages")
            // Anthropic's max_tokens is required, so the cap is always the client's own.
            guard body["max_tokens"] != nil, case .limited(let cap) = try InferenceRequest.maxTokens(body, "max_tokens") else {
                throw .badRequest("`max_tokens` is required (an integer of at least 1).", code: "missing_field", param: "max_tokens")
            }
            request.budget = TokenBudget(promptTokens: InferenceRequest.chatPromptEstimate(body), sequences: 1, cap: .limited(cap), defaultCap: cap)
        case .pooling:
            try pooling(&request, contextLength: contextLength)
        case .requestOnly, .audio, .chat, .completions:
            request.budget = TokenBudget(promptTokens: 0, sequences: 0, cap: .limited(0), defaultCap: 0)
        }
    }

    /// N conversations in one request (`messages` is a list of message lists), each generating `n` sequences.
    private static func batchChat(_ body: JSONValue, defaultMaxTokens: Int) throws(GatewayError) -> TokenBudget {
        guard let conversations = body["messages"]?.arrayValue, !conversations.isEmpty,
              conversations.allSatisfy({ $0.arrayValue != nil }) else {
            throw InferenceRequest.typeError("messages", "a non-empty list of conversations (lists of messages)")
        }
        let messageCount = conversations.reduce(0) { $0.saturatingAdded($1.arrayValue?.count ?? 0) }
        // Tools are rendered into every conversation.
        let tools = (body["tools"].map { $0.serialized.utf8.count / 4 } ?? 0).saturatingMultiplied(by: conversations.count)
        let prompt = (InferenceRequest.textBytes(body) / 4 + conversations.count).saturatingAdded(messageCount.saturatingMultiplied(by: 4)).saturatingAdded(tools)
        var cap = try InferenceRequest.maxTokens(body, "max_completion_tokens")
        if case .limited = cap {} else { cap = try InferenceRequest.maxTokens(body, "max_tokens") }
        return TokenBudget(promptTokens: prompt, sequences: conversations.count.saturatingMultiplied(by: try InferenceRequest.choices(body)),
                           cap: cap, defaultCap: defaultMaxTokens)
    }

    /// `input` (a string or a list of items) and `instructions`, capped by `max_output_tokens`. The context of
    /// `previous_response_id` is added at admission, where the gateway knows the responses it has seen.
    private static func responses(_ request: inout InferenceRequest, defaultMaxTokens: Int) throws(GatewayError) {
        let body = request.body
        guard let input = body["input"], !input.isNull else { throw .badRequest("`input` is required.", code: "missing_field", param: "input") }
        guard input.stringValue != nil || input.arrayValue != nil else { throw InferenceRequest.typeError("input", "a string or an array of items") }
        request.previousResponseID = try InferenceRequest.optional(body, "previous_response_id", "a string") { $0.stringValue }
        request.background = try InferenceRequest.optional(body, "background", "a boolean") { $0.boolValue } ?? false
        let items = input.arrayValue?.count ?? 1
        let tools = body["tools"].map { $0.serialized.utf8.count / 4 } ?? 0
        let prompt = (InferenceRequest.textBytes(body) / 4 + 1).saturatingAdded(items.saturatingMultiplied(by: 4)).saturatingAdded(tools)
        request.capField = "max_output_tokens"
        request.budget = TokenBudget(promptTokens: prompt, sequences: 1, cap: try InferenceRequest.maxTokens(body, "max_output_tokens"),
                                     defaultCap: defaultMaxTokens)
    }

    /// Embeddings, rerank, score, classify, pooling: input-only. A query is scored against every document, so it
    /// counts once per document; a response without usage (`encoding_format: bytes_only`) is charged one token per
    /// byte, a bound no tokenizer exceeds, since there is nothing to settle it against.
    private static func pooling(_ request: inout InferenceRequest, contextLength: Int?) throws(GatewayError) {
        let body = request.body
        switch try InferenceRequest.optional(body, "encoding_format", "a string", { $0.stringValue }) {
        case "bytes"?: request.encoding = .bytes
        case "bytes_only"?: request.encoding = .bytesOnly
        default: request.encoding = .json
        }
        var tokens = 0
        var present = false
        /// Sequences vLLM runs: what `padding: max_length` multiplies by the model's length.
        var sequences = 0
        for key in ["input", "texts", "inputs", "messages"] {
            guard let value = body[key], !value.isNull else { continue }
            present = true
            tokens = tokens.saturatingAdded(try inputTokens(value, param: key, bytesOnly: request.encoding == .bytesOnly))
            sequences = sequences.saturatingAdded(key == "messages" ? 1 : items(value))
        }
        // Cohere's `images` (data URIs): reserved per image with every request's media parts, not as text.
        if let images = body["images"]?.arrayValue, !images.isEmpty {
            present = true
            sequences = sequences.saturatingAdded(images.count)
        }
        // Pairs: `query` × `documents` (rerank), `text_1` × `text_2` / `queries` × `documents` / `data_1` × `data_2` (score).
        for (left, right) in [("query", "documents"), ("text_1", "text_2"), ("queries", "documents"), ("data_1", "data_2")] {
            guard let first = body[left], !first.isNull, let second = body[right], !second.isNull else { continue }
            present = true
            let lefts = try inputTokens(first, param: left, bytesOnly: request.encoding == .bytesOnly)
            let rights = try inputTokens(second, param: right, bytesOnly: request.encoding == .bytesOnly)
            let pairs = max(items(first), items(second))
            tokens = tokens.saturatingAdded(lefts.saturatingMultiplied(by: items(first) == 1 ? pairs : 1))
                .saturatingAdded(rights.saturatingMultiplied(by: items(second) == 1 ? pairs : 1))
            sequences = sequences.saturatingAdded(pairs.saturatingMultiplied(by: 2))
            break
        }
        guard present else {
            throw .badRequest("`input` (or `query` with `documents`, `text_1` with `text_2`) is required.", code: "missing_field", param: "input")
        }
        // vLLM pads every input to the model's full length: that, not the text, is what it processes.
        if try InferenceRequest.optional(body, "padding", "a string", { $0.stringValue }) == "max_length" {
            guard let contextLength else {
                throw .badRequest("`padding: max_length` pads every input to the model's full length, which the gateway can meter only when "
                                  + "the operator sets vllm.max_model_len in the deployment file.", code: "padding_not_metered", param: "padding")
            }
            tokens = max(tokens, sequences.saturatingMultiplied(by: contextLength))
        }
        request.budget = TokenBudget(promptTokens: tokens, sequences: 0, cap: .limited(0), defaultCap: 0)
    }

    private static func items(_ value: JSONValue) -> Int {
        guard let list = value.arrayValue else { return 1 }
        return list.allSatisfy({ $0.intValue != nil }) ? 1 : max(1, list.count)
    }

    /// A string, token ids, or a list of strings / token-id lists / objects with text (multimodal documents).
    private static func inputTokens(_ value: JSONValue, param: String, bytesOnly: Bool) throws(GatewayError) -> Int {
        let perText: (Int) -> Int = { bytes in bytesOnly ? bytes + 2 : bytes / 4 + 1 }
        if let text = value.stringValue { return perText(text.utf8.count) }
        guard let list = value.arrayValue, !list.isEmpty else { throw InferenceRequest.typeError(param, "a non-empty string or array") }
        if list.allSatisfy({ $0.intValue != nil }) { return list.count }
        var tokens = 0
        for item in list {
            if let text = item.stringValue {
                tokens = tokens.saturatingAdded(perText(text.utf8.count))
            } else if let ids = item.arrayValue, ids.allSatisfy({ $0.intValue != nil }) {
                tokens = tokens.saturatingAdded(max(1, ids.count))
            } else if case .object = item {
                // A multimodal document or a chat message: its text, plus room for what it references.
                tokens = tokens.saturatingAdded(perText(InferenceRequest.textBytes(.object([("content", item)]))) + 4)
            } else {
                throw InferenceRequest.typeError(param, "strings, token ids, or lists of those")
            }
        }
        return tokens
    }
}
