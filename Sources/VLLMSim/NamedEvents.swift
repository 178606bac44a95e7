import WardenJSON

/// The Responses API and Anthropic Messages shapes, as vLLM's `serving_responses.py` and
/// `anthropic/serving.py` write them: `event: <type>\ndata: <json>\n\n`, no `[DONE]`, usage
/// `{input_tokens, output_tokens}` on `response.completed` / `message_delta` and on the whole objects.
extension ResponseEncoder {
    static func named(_ type: String, _ json: String) -> String { "event: \(type)\ndata: \(json)\n\n" }

    private var itemID: String { "msg_" + id.dropFirst("resp_".count) }

    private static func quoted(_ text: String) -> String {
        var result = ""
        result.appendJSONString(text)
        return result
    }

    // MARK: - Responses

    private mutating func responsesEvent(_ type: String, _ fields: String) -> String {
        defer { sequence += 1 }
        return Self.named(type, "{\(fields),\"sequence_number\":\(sequence),\"type\":\"\(type)\"}")
    }

    /// The response object: in `response.created` (in progress, no usage), stored, and returned whole.
    func responseObject(status: String, text: String?, usage: Usage?, request: GenerationRequest) -> String {
        let output = text.map { text in
            "[{\"id\":\"\(itemID)\",\"content\":[{\"annotations\":[],\"text\":\(Self.quoted(text)),\"type\":\"output_text\",\"logprobs\":null}],\"role\":\"assistant\",\"status\":\"completed\",\"type\":\"message\"}]"
        } ?? "[]"
        let usageJSON = usage.map {
            "{\"input_tokens\":\($0.promptTokens),\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":\($0.completionTokens),\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":\($0.promptTokens + $0.completionTokens)}"
        } ?? "null"
        let previous = request.previousResponseID.map(Self.quoted) ?? "null"
        return "{\"id\":\"\(id)\",\"created_at\":\(created),\"incomplete_details\":null,\"instructions\":null,\"metadata\":null,\"model\":\(model),\"object\":\"response\",\"output\":\(output),\"parallel_tool_calls\":true,\"temperature\":1.0,\"tool_choice\":\"auto\",\"tools\":\(request.tools),\"top_p\":1.0,\"background\":\(request.background),\"max_output_tokens\":\(request.maxTokens),\"max_tool_calls\":null,\"previous_response_id\":\(previous),\"prompt\":null,\"reasoning\":null,\"service_tier\":\"auto\",\"status\":\"\(status)\",\"text\":null,\"top_logprobs\":null,\"truncation\":\"disabled\",\"usage\":\(usageJSON),\"user\":null}"
    }

    mutating func responsesOpening(_ request: GenerationRequest) -> String {
        let object = responseObject(status: "in_progress", text: nil, usage: nil, request: request)
        return responsesEvent("response.created", "\"response\":\(object)")
            + responsesEvent("response.in_progress", "\"response\":\(object)")
            + responsesEvent("response.output_item.added", "\"item\":{\"id\":\"\(itemID)\",\"content\":[],\"role\":\"assistant\",\"status\":\"in_progress\",\"type\":\"message\"},\"output_index\":0")
            + responsesEvent("response.content_part.added", "\"content_index\":0,\"item_id\":\"\(itemID)\",\"output_index\":0,\"part\":{\"annotations\":[],\"text\":\"\",\"type\":\"output_text\",\"logprobs\":null}")
    }

    mutating func responsesDelta(_ text: String) -> String {
        responsesEvent("response.output_text.delta", "\"content_index\":0,\"delta\":\(Self.quoted(text)),\"item_id\":\"\(itemID)\",\"logprobs\":[],\"output_index\":0")
    }

    mutating func responsesClosing(usage: Usage, text: String, request: GenerationRequest) -> String {
        let part = "{\"annotations\":[],\"text\":\(Self.quoted(text)),\"type\":\"output_text\",\"logprobs\":null}"
        return responsesEvent("response.output_text.done", "\"content_index\":0,\"item_id\":\"\(itemID)\",\"logprobs\":[],\"output_index\":0,\"text\":\(Self.quoted(text))")
            + responsesEvent("response.content_part.done", "\"content_index\":0,\"item_id\":\"\(itemID)\",\"output_index\":0,\"part\":\(part)")
            + responsesEvent("response.output_item.done", "\"item\":{\"id\":\"\(itemID)\",\"content\":[\(part)],\"role\":\"assistant\",\"status\":\"completed\",\"type\":\"message\"},\"output_index\":0")
            + responsesEvent("response.completed", "\"response\":\(responseObject(status: "completed", text: text, usage: usage, request: request))")
    }

    mutating func responsesError(_ error: SimulatorError) -> String {
        responsesEvent("error", "\"code\":\"\(error.type)\",\"message\":\(Self.quoted(error.message)),\"param\":null")
    }

    // MARK: - Messages

    func messageObject(text: String, finishReason: String, usage: Usage) -> String {
        "{\"id\":\"\(id)\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\(Self.quoted(text))}],\"model\":\(model),\"stop_reason\":\"\(Self.stopReason(finishReason))\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":\(usage.promptTokens),\"output_tokens\":\(usage.completionTokens)}}"
    }

    /// vLLM's map from OpenAI finish reasons to Anthropic stop reasons.
    static func stopReason(_ finishReason: String) -> String { finishReason == "length" ? "max_tokens" : "end_turn" }

    func messagesOpening(promptTokens: Int) -> String {
        Self.named("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"\(id)\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\(model),\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":\(promptTokens),\"output_tokens\":0}}}")
            + Self.named("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}")
    }

    func messagesDelta(_ text: String) -> String {
        Self.named("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\(Self.quoted(text))}}")
    }

    func messagesClosing(usage: Usage, finishReason: String) -> String {
        Self.named("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}")
            + Self.named("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"\(Self.stopReason(finishReason))\"},\"usage\":{\"input_tokens\":\(usage.promptTokens),\"output_tokens\":\(usage.completionTokens)}}")
            + Self.named("message_stop", "{\"type\":\"message_stop\"}")
    }

    func messagesError(_ error: SimulatorError) -> String {
        Self.named("error", "{\"type\":\"error\",\"error\":{\"type\":\"internal_error\",\"message\":\(Self.quoted(error.message))}}")
    }
}
