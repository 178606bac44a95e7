import WardenJSON

/// Prompts of the Responses and Anthropic Messages APIs, rendered through the same chat template as chat.
enum NamedRequests {
    /// `instructions` as a system message, then `input` (a string, or items with string or part content), after
    /// the stored context of `previous_response_id`.
    static func responsesPrompt(_ body: JSONValue, context: String) throws(SimulatorError) -> GenerationRequest.Prompt {
        guard let input = body["input"], !input.isNull else { throw .validation("input", "Field required") }
        var messages: [ChatMessage] = []
        if let instructions = try GenerationRequest.optionalString(body, "instructions") {
            messages.append(ChatMessage(role: "system", content: instructions))
        }
        if let text = input.stringValue {
            messages.append(ChatMessage(role: "user", content: text))
        } else if let items = input.arrayValue {
            for (index, item) in items.enumerated() {
                guard case .object = item else { throw .validation("input.\(index)", "Input should be a valid dictionary") }
                messages.append(ChatMessage(role: item["role"]?.stringValue ?? "user",
                                            content: try partsText(item["content"], location: "input.\(index).content")))
            }
        } else {
            throw .validation("input", "Input should be a valid string or list")
        }
        let text = context + FakeTokenizer.chatPrompt(messages, addGenerationPrompt: true)
        return GenerationRequest.Prompt(text: text, tokenCount: FakeTokenizer.count(text, addSpecialTokens: false))
    }

    /// `system` (a string or text blocks) and `messages` (string or block content).
    static func messagesPrompt(_ body: JSONValue) throws(SimulatorError) -> GenerationRequest.Prompt {
        guard let list = body["messages"]?.arrayValue else { throw .validation("messages", "Field required") }
        var messages: [ChatMessage] = []
        if let system = body["system"], !system.isNull {
            messages.append(ChatMessage(role: "system", content: try partsText(system, location: "system")))
        }
        for (index, message) in list.enumerated() {
            guard let role = message["role"]?.stringValue else { throw .validation("messages.\(index).role", "Field required") }
            messages.append(ChatMessage(role: role, content: try partsText(message["content"], location: "messages.\(index).content")))
        }
        let text = FakeTokenizer.chatPrompt(messages, addGenerationPrompt: true)
        return GenerationRequest.Prompt(text: text, tokenCount: FakeTokenizer.count(text, addSpecialTokens: false))
    }

    /// A string, or a list of parts whose `text` is joined (`input_text`, `output_text`, `text` parts alike).
    private static func partsText(_ content: JSONValue?, location: String) throws(SimulatorError) -> String {
        guard let content, !content.isNull else { return "" }
        if let text = content.stringValue { return text }
        guard let parts = content.arrayValue else { throw .validation(location, "Input should be a valid string or list") }
        return parts.compactMap { $0["text"]?.stringValue }.joined()
    }
}
