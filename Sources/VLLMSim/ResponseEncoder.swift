import WardenJSON

/// Writes vLLM's response bodies and SSE events, field for field in vLLM's order: OpenAI chunks for chat and
/// completions, named events for the Responses and Anthropic Messages APIs (``NamedEvents``).
struct ResponseEncoder {
    let id: String
    let created: Int
    let model: String
    let kind: GenerationRequest.Kind
    /// Responses API events are numbered.
    var sequence = 0

    init(kind: GenerationRequest.Kind, model: String, created: Int, idNumber: UInt64) {
        self.kind = kind
        self.created = created
        var quotedModel = ""
        quotedModel.appendJSONString(model)
        self.model = quotedModel
        // 32 hex digits like vLLM's uuid4().hex: a per-process random half, then the request number.
        let prefix = switch kind {
        case .chat: "chatcmpl-"
        case .completion: "cmpl-"
        case .responses: "resp_"
        case .messages: "msg_"
        }
        self.id = prefix + Self.hex16(Self.processSalt) + Self.hex16(idNumber)
    }

    private static let processSalt = UInt64.random(in: .min ... .max)

    static func hex16(_ value: UInt64) -> String {
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    private var chunkObject: String { kind == .chat ? "chat.completion.chunk" : "text_completion" }

    func header(object: String) -> String {
        "{\"id\":\"\(id)\",\"object\":\"\(object)\",\"created\":\(created),\"model\":\(model),"
    }

    static func event(_ json: String) -> String { "data: \(json)\n\n" }
    static let done = "data: [DONE]\n\n"

    /// The first chunk of each chat choice: the assistant role with empty content.
    func roleChunk(choice: Int, usage: Usage?) -> String {
        var json = header(object: chunkObject)
        json += "\"choices\":[{\"index\":\(choice),\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]"
        if let usage { json += ",\"usage\":\(usage.json)" }
        return Self.event(json + "}")
    }

    /// The events before the first token: chat's role chunks, the Responses and Messages preambles.
    mutating func opening(choices: Int, usage: Usage?, request: GenerationRequest) -> String {
        switch kind {
        case .chat: return (0..<choices).map { roleChunk(choice: $0, usage: usage) }.joined()
        case .completion: return ""
        case .responses: return responsesOpening(request)
        case .messages: return messagesOpening(promptTokens: request.promptTokens)
        }
    }

    /// The events after the last token: the usage chunk and `[DONE]`, or the named closing events with usage.
    mutating func closing(usage: Usage, text: String, finishReason: String, request: GenerationRequest) -> String {
        switch kind {
        case .chat, .completion: return (request.includeUsage ? usageChunk(usage) : "") + Self.done
        case .responses: return responsesClosing(usage: usage, text: text, request: request)
        case .messages: return messagesClosing(usage: usage, finishReason: finishReason)
        }
    }

    /// An error after the head was sent, in the stream's own form.
    mutating func midStreamError(_ error: SimulatorError) -> String {
        switch kind {
        case .chat, .completion: return Self.errorEvent(error) + Self.done
        case .responses: return responsesError(error)
        case .messages: return messagesError(error)
        }
    }

    /// One token of one choice; the last one carries `finish_reason` and `stop_reason`.
    mutating func tokenChunk(choice: Int, text: String, finishReason: String?, usage: Usage?) -> String {
        if kind == .responses { return responsesDelta(text) }
        if kind == .messages { return messagesDelta(text) }
        var json = header(object: chunkObject) + "\"choices\":[{\"index\":\(choice),"
        var quoted = ""
        quoted.appendJSONString(text)
        switch kind {
        case .chat, .responses, .messages:
            json += "\"delta\":{\"content\":\(quoted)},\"logprobs\":null,"
            json += finishReason.map { "\"finish_reason\":\"\($0)\",\"stop_reason\":null" } ?? "\"finish_reason\":null"
        case .completion:
            json += "\"text\":\(quoted),\"logprobs\":null,"
            json += "\"finish_reason\":" + (finishReason.map { "\"\($0)\"" } ?? "null") + ",\"stop_reason\":null"
        }
        json += "}]"
        if let usage { json += ",\"usage\":\(usage.json)" }
        return Self.event(json + "}")
    }

    /// The final usage chunk, sent only when the client asked for `include_usage`.
    func usageChunk(_ usage: Usage) -> String {
        Self.event(header(object: chunkObject) + "\"choices\":[],\"usage\":\(usage.json)}")
    }

    /// An error after the head was sent: vLLM keeps status 200 and sends it as an event before `[DONE]`.
    static func errorEvent(_ error: SimulatorError) -> String {
        event(error.json(legacy: false))
    }

    /// The whole non-streaming response.
    func completeResponse(texts: [String], finishReason: String, usage: Usage, request: GenerationRequest) -> String {
        if kind == .responses { return responseObject(status: "completed", text: texts.first ?? "", usage: usage, request: request) }
        if kind == .messages { return messageObject(text: texts.first ?? "", finishReason: finishReason, usage: usage) }
        var json = header(object: kind == .chat ? "chat.completion" : "text_completion") + "\"choices\":["
        for (index, text) in texts.enumerated() {
            if index > 0 { json += "," }
            var quoted = ""
            quoted.appendJSONString(text)
            switch kind {
            case .chat, .responses, .messages:
                json += "{\"index\":\(index),\"message\":{\"role\":\"assistant\",\"content\":\(quoted),\"refusal\":null,\"annotations\":null,\"audio\":null,\"function_call\":null,\"tool_calls\":[],\"reasoning_content\":null},\"logprobs\":null,\"finish_reason\":\"\(finishReason)\",\"stop_reason\":null}"
            case .completion:
                json += "{\"index\":\(index),\"text\":\(quoted),\"logprobs\":null,\"finish_reason\":\"\(finishReason)\",\"stop_reason\":null,\"prompt_logprobs\":null}"
            }
        }
        json += "],\"service_tier\":null,\"system_fingerprint\":null,\"usage\":\(usage.detailedJSON),\"prompt_logprobs\":null,\"kv_transfer_params\":null}"
        return json
    }
}
