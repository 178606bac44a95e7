import NIOCore
import WardenNIOSupport
import NIOHTTP1
import WardenJSON

/// The routes that answer at once: discovery, tokenizer, embeddings, utility and control endpoints.
enum SimulatorUtilityRoutes {
    static func answer(_ route: Route, body: ByteBuffer, core: SimulatorCore) -> (HTTPResponseStatus, String) {
        let configuration = core.configuration
        do throws(SimulatorError) {
            switch route {
            case .models: return (.ok, models(core))
            case .version: return (.ok, "{\"version\":\"\(configuration.version)\"}")
            case .load: return (.ok, "{\"server_load\":\(core.state.inFlight)}")
            case .tokenize: return (.ok, try tokenize(try parseBody(body), configuration: configuration))
            case .detokenize: return (.ok, try detokenize(try parseBody(body), configuration: configuration))
            case .countTokens:
                let document = try parseBody(body)
                _ = try checkModel(document, configuration)
                return (.ok, "{\"input_tokens\":\(try NamedRequests.messagesPrompt(document).tokenCount)}")
            case .render(let path): return (.ok, try render(path, try parseBody(body), configuration: configuration))
            case .storedResponse(let id):
                guard let stored = core.state.storedResponse(id) else { throw responseNotFound(id) }
                return (.ok, stored.object)
            case .cancelResponse(let id):
                guard let stored = core.state.storedResponse(id) else { throw responseNotFound(id) }
                guard stored.object.contains("\"status\":\"queued\"") || stored.object.contains("\"status\":\"in_progress\"") else {
                    throw SimulatorError.badRequest("Cannot cancel a synchronous response.")
                }
                let cancelled = stored.object.replacing("\"status\":\"queued\"", with: "\"status\":\"cancelled\"", maxReplacements: 1)
                core.state.storeResponse(id: id, object: cancelled, context: stored.context)
                return (.ok, cancelled)
            case .control(let path): return (.ok, controlAnswer(path))
            default: return (.notFound, "{\"detail\":\"Not Found\"}")
            }
        } catch {
            core.state.countFailure()
            return (HTTPResponseStatus(statusCode: error.status), error.json(legacy: configuration.legacyErrorShape))
        }
    }

    private static func parseBody(_ body: ByteBuffer) throws(SimulatorError) -> JSONValue {
        do {
            return try JSONValue.parse(body.readableBytesView)
        } catch {
            throw .badRequest("JSON decode error: \(error)")
        }
    }

    static func checkModel(_ body: JSONValue, _ configuration: SimulatorConfiguration) throws(SimulatorError) -> String {
        guard let value = body["model"], !value.isNull else { return configuration.servedModelName }
        guard let name = value.stringValue else { throw .validation("model", "Input should be a valid string") }
        guard name == configuration.servedModelName else { throw .unknownModel(name) }
        return name
    }

    static func models(_ core: SimulatorCore) -> String {
        let configuration = core.configuration
        var name = "", root = ""
        name.appendJSONString(configuration.servedModelName)
        root.appendJSONString(configuration.modelRoot)
        let created = core.startedAt
        let permission = "{\"id\":\"modelperm-sim\",\"object\":\"model_permission\",\"created\":\(created),\"allow_create_engine\":false,\"allow_sampling\":true,\"allow_logprobs\":true,\"allow_search_indices\":false,\"allow_view\":true,\"allow_fine_tuning\":false,\"organization\":\"*\",\"group\":null,\"is_blocking\":false}"
        return "{\"object\":\"list\",\"data\":[{\"id\":\(name),\"object\":\"model\",\"created\":\(created),\"owned_by\":\"vllm\",\"root\":\(root),\"parent\":null,\"max_model_len\":\(configuration.maxModelLen),\"permission\":[\(permission)]}]}"
    }

    private static func responseNotFound(_ id: String) -> SimulatorError {
        SimulatorError(status: 404, type: "invalid_request_error", message: "Response with id '\(id)' not found.", param: nil)
    }

    /// The render routes: the prompt vLLM would run, tokenised, without generating.
    static func render(_ path: String, _ body: JSONValue, configuration: SimulatorConfiguration) throws(SimulatorError) -> String {
        _ = try checkModel(body, configuration)
        let prompt = path == "/v1/chat/completions/render"
            ? try GenerationRequest.chatPrompt(body)
            : GenerationRequest.Prompt(text: body["prompt"]?.stringValue ?? "", tokenCount: FakeTokenizer.count(body["prompt"]?.stringValue ?? "", addSpecialTokens: true))
        var quoted = ""
        quoted.appendJSONString(prompt.text)
        return "{\"prompt\":\(quoted),\"prompt_token_count\":\(prompt.tokenCount)}"
    }

    /// `/tokenize`: a completion-style `prompt` or a chat-style `messages` list.
    static func tokenize(_ body: JSONValue, configuration: SimulatorConfiguration) throws(SimulatorError) -> String {
        _ = try checkModel(body, configuration)
        let tokens: [Int]
        if let messages = body["messages"] {
            guard let list = messages.arrayValue else { throw .validation("messages", "Input should be a valid list") }
            var parsed: [ChatMessage] = []
            for (index, message) in list.enumerated() {
                guard let role = message["role"]?.stringValue else { throw .validation("messages.\(index).role", "Field required") }
                parsed.append(ChatMessage(role: role, content: try GenerationRequest.contentText(message["content"], location: "messages.\(index).content")))
            }
            let addGenerationPrompt = try GenerationRequest.optionalBool(body, "add_generation_prompt") ?? true
            let addSpecial = try GenerationRequest.optionalBool(body, "add_special_tokens") ?? false
            tokens = FakeTokenizer.encode(FakeTokenizer.chatPrompt(parsed, addGenerationPrompt: addGenerationPrompt), addSpecialTokens: addSpecial)
        } else {
            guard let prompt = body["prompt"]?.stringValue else { throw .validation("prompt", "Field required") }
            let addSpecial = try GenerationRequest.optionalBool(body, "add_special_tokens") ?? true
            tokens = FakeTokenizer.encode(prompt, addSpecialTokens: addSpecial)
        }
        let returnStrings = try GenerationRequest.optionalBool(body, "return_token_strs") ?? false
        let strings = returnStrings
            ? JSONValue.array(tokens.map { .string(FakeTokenizer.decode([$0]) ?? "") }).serialized
            : "null"
        let list = tokens.map(String.init).joined(separator: ",")
        return "{\"count\":\(tokens.count),\"max_model_len\":\(configuration.maxModelLen),\"tokens\":[\(list)],\"token_strs\":\(strings)}"
    }

    static func detokenize(_ body: JSONValue, configuration: SimulatorConfiguration) throws(SimulatorError) -> String {
        _ = try checkModel(body, configuration)
        guard let items = body["tokens"]?.arrayValue else { throw .validation("tokens", "Field required") }
        let ids = items.compactMap(\.intValue)
        guard ids.count == items.count, let text = FakeTokenizer.decode(ids) else {
            throw .badRequest("Invalid token ids: not produced by this tokenizer.", param: "tokens")
        }
        var quoted = ""
        quoted.appendJSONString(text)
        return "{\"prompt\":\(quoted)}"
    }

    static func vector(for text: String) -> [Double] {
        var seed = FakeTokenizer.seed(of: text)
        var values: [Double] = []
        for _ in 0..<8 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            values.append(Double(seed >> 11) / Double(1 << 53) * 2 - 1)
        }
        let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return values.map { ($0 / norm * 1e6).rounded() / 1e6 }
    }

    /// Control routes answer as vLLM does with `VLLM_SERVER_DEV_MODE=1`: they work, which is why a gateway must block them.
    static func controlAnswer(_ path: String) -> String {
        switch path {
        case "/is_paused": return "{\"is_paused\":false}"
        case "/is_sleeping": return "{\"is_sleeping\":false}"
        case "/is_scaling_elastic_ep": return "{\"is_scaling_elastic_ep\":false}"
        case "/get_world_size": return "{\"world_size\":1}"
        default: return "{}"
        }
    }

    /// `POST /sim/faults`: replaces the server-wide faults; absent fields keep their value.
    static func faults(body: ByteBuffer, current: SimulatorFaults) -> Result<SimulatorFaults, SimulatorError> {
        guard let document = try? JSONValue.parse(body.readableBytesView), case .object = document else {
            return .failure(.badRequest("POST /sim/faults takes a JSON object"))
        }
        var faults = current
        for (key, value) in document.objectValue ?? [] {
            switch key {
            case "fail_percent": faults.failPercent = value.intValue ?? 0
            case "close_after_tokens": faults.closeAfterTokens = value.intValue
            case "error_after_tokens": faults.errorAfterTokens = value.intValue
            case "head_delay_ms": faults.headDelay = .milliseconds(value.intValue ?? 0)
            case "unhealthy": faults.unhealthy = value.boolValue ?? false
            default:
                return .failure(.badRequest("unknown fault '\(key)' (fail_percent, close_after_tokens, error_after_tokens, head_delay_ms, unhealthy)"))
            }
        }
        return .success(faults)
    }
}

