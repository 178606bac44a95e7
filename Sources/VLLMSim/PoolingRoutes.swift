import NIOCore
import NIOHTTP1
import WardenJSON
import WardenNIOSupport

/// Embeddings and vLLM's other pooling routes (rerank, score, classify, pooling, Cohere's `/v2/embed`): input-only
/// usage, every query–document pair tokenised together, as vLLM's pooling serving does.
enum PoolingRoutes {
    static let paths = ["/v1/embeddings", "/v2/embed", "/v1/score", "/score", "/v1/rerank", "/rerank", "/v2/rerank", "/pooling", "/classify"]

    struct Headers {
        var contentType = "application/json"
        var extra: [(String, String)] = []
    }

    static func answer(_ path: String, body: ByteBuffer, core: SimulatorCore) -> (HTTPResponseStatus, Headers, ByteBuffer) {
        let configuration = core.configuration
        do throws(SimulatorError) {
            let document: JSONValue
            do { document = try JSONValue.parse(body.readableBytesView) } catch { throw SimulatorError.badRequest("JSON decode error: \(error)") }
            var model = ""
            model.appendJSONString(try SimulatorUtilityRoutes.checkModel(document, configuration))
            let created = epochSeconds()
            let (answer, tokens) = try respond(path, document, model: model, created: created)
            core.state.countImmediate(route: "POST \(path)", promptTokens: tokens)
            return answer
        } catch {
            core.state.countFailure()
            return (HTTPResponseStatus(statusCode: error.status), Headers(), ByteBuffer(string: error.json(legacy: configuration.legacyErrorShape)))
        }
    }

    private static func respond(_ path: String, _ body: JSONValue, model: String, created: Int) throws(SimulatorError)
        -> ((HTTPResponseStatus, Headers, ByteBuffer), Int) {
        func json(_ text: String) -> (HTTPResponseStatus, Headers, ByteBuffer) { (.ok, Headers(), ByteBuffer(string: text)) }
        switch path {
        case "/v1/rerank", "/rerank", "/v2/rerank":
            guard let query = body["query"]?.stringValue else { throw .validation("query", "Field required") }
            let documents = try texts(body["documents"], "documents")
            let tokens = documents.reduce(0) { $0 + pairTokens(query, $1) }
            let results = documents.enumerated().map { index, text in
                "{\"index\":\(index),\"document\":{\"text\":\(quoted(text))},\"relevance_score\":\(score(query, text))}"
            }
            return (json("{\"id\":\"rerank-sim\(created)\",\"model\":\(model),\"usage\":{\"prompt_tokens\":\(tokens),\"total_tokens\":\(tokens)},\"results\":[\(results.joined(separator: ","))]}"), tokens)
        case "/v1/score", "/score":
            let (left, right) = body["text_1"] != nil ? ("text_1", "text_2") : (body["queries"] != nil ? ("queries", "documents") : ("data_1", "data_2"))
            let firsts = try texts(body[left], left)
            let seconds = try texts(body[right], right)
            let pairs: [(String, String)] = firsts.count == 1 ? seconds.map { (firsts[0], $0) } : Array(zip(firsts, seconds))
            guard firsts.count == 1 || firsts.count == seconds.count else { throw .badRequest("\(left) and \(right) must have the same length.") }
            let tokens = pairs.reduce(0) { $0 + pairTokens($1.0, $1.1) }
            let data = pairs.enumerated().map { "{\"index\":\($0),\"object\":\"score\",\"score\":\(score($1.0, $1.1))}" }
            return (json("{\"id\":\"score-sim\(created)\",\"object\":\"list\",\"created\":\(created),\"model\":\(model),\"data\":[\(data.joined(separator: ","))],\"usage\":\(usage(tokens))}"), tokens)
        case "/v2/embed":
            let inputs = try texts(body["texts"], "texts")
            let tokens = inputs.reduce(0) { $0 + FakeTokenizer.count($1, addSpecialTokens: true) }
            let vectors = inputs.map { "[" + SimulatorUtilityRoutes.vector(for: $0).map { String($0) }.joined(separator: ",") + "]" }
            return (json("{\"id\":\"embd-sim\(created)\",\"embeddings\":{\"float\":[\(vectors.joined(separator: ","))]},\"texts\":[\(inputs.map(quoted).joined(separator: ","))],\"meta\":{\"api_version\":{\"version\":\"2\"},\"tokens\":{\"input_tokens\":\(tokens)}}}"), tokens)
        default:
            let (inputs, tokens) = try embeddingInputs(body)
            let format = try GenerationRequest.optionalString(body, "encoding_format") ?? "float"
            if path == "/v1/embeddings", format == "bytes" || format == "bytes_only" {
                return (bytesResponse(inputs, tokens: tokens, model: model, created: created, withMetadata: format == "bytes"), tokens)
            }
            let (object, item) = switch path {
            case "/classify": ("list", "classification")
            case "/pooling": ("list", "pooling")
            default: ("list", "embedding")
            }
            let data = inputs.enumerated().map { index, text in
                let vector = SimulatorUtilityRoutes.vector(for: text)
                let value = format == "base64" ? quoted(base64(floatBytes(vector))) : "[" + vector.map { String($0) }.joined(separator: ",") + "]"
                return switch item {
                case "classification": "{\"index\":\(index),\"label\":\"LABEL_\(vector[0] > 0 ? 1 : 0)\",\"probs\":[\(abs(vector[0])),\(1 - abs(vector[0]))],\"num_classes\":2}"
                case "pooling": "{\"index\":\(index),\"object\":\"pooling\",\"data\":\(value)}"
                default: "{\"index\":\(index),\"object\":\"embedding\",\"embedding\":\(value)}"
                }
            }
            return (json("{\"id\":\"embd-sim\(created)\",\"object\":\"\(object)\",\"created\":\(created),\"model\":\(model),\"data\":[\(data.joined(separator: ","))],\"usage\":\(usage(tokens))}"), tokens)
        }
    }

    /// `encoding_format: bytes` (usage in the `metadata` header) and `bytes_only` (no usage at all).
    private static func bytesResponse(_ inputs: [String], tokens: Int, model: String, created: Int, withMetadata: Bool) -> (HTTPResponseStatus, Headers, ByteBuffer) {
        var body: [UInt8] = []
        var items: [String] = []
        for (index, text) in inputs.enumerated() {
            let bytes = floatBytes(SimulatorUtilityRoutes.vector(for: text))
            items.append("{\"index\": \(index), \"embed_dtype\": \"float32\", \"endianness\": \"native\", \"start\": \(body.count), \"end\": \(body.count + bytes.count), \"shape\": [8]}")
            body += bytes
        }
        var headers = Headers(contentType: "application/octet-stream")
        if withMetadata {
            // As vLLM writes it: Python's json.dumps, with ", " and ": " between items.
            headers.extra = [("metadata", "{\"id\": \"embd-sim\(created)\", \"created\": \(created), \"model\": \(model), \"data\": [\(items.joined(separator: ", "))], \"usage\": {\"prompt_tokens\": \(tokens), \"total_tokens\": \(tokens)}}")]
        }
        return (.ok, headers, ByteBuffer(bytes: body))
    }

    /// `input` (or `messages` on `/pooling`): the texts and their token count (token ids count one each).
    private static func embeddingInputs(_ body: JSONValue) throws(SimulatorError) -> ([String], Int) {
        if let messages = body["messages"], !messages.isNull {
            let prompt = try GenerationRequest.chatPrompt(body)
            return ([prompt.text], prompt.tokenCount)
        }
        guard let input = body["input"], !input.isNull else { throw .validation("input", "Field required") }
        if let text = input.stringValue { return ([text], FakeTokenizer.count(text, addSpecialTokens: true)) }
        guard let items = input.arrayValue, !items.isEmpty else { throw .validation("input", "Input should be a valid string or list") }
        if items.allSatisfy({ $0.intValue != nil }) { return ([items.compactMap(\.intValue).map(String.init).joined(separator: ",")], items.count) }
        var texts: [String] = []
        var tokens = 0
        for (index, item) in items.enumerated() {
            if let text = item.stringValue {
                texts.append(text)
                tokens += FakeTokenizer.count(text, addSpecialTokens: true)
            } else if let ids = item.arrayValue, ids.allSatisfy({ $0.intValue != nil }) {
                texts.append(ids.compactMap(\.intValue).map(String.init).joined(separator: ","))
                tokens += ids.count
            } else {
                throw .validation("input.\(index)", "Input should be a valid string or list of token ids")
            }
        }
        return (texts, tokens)
    }

    /// A string, or a list of strings or `{"text": …}` documents.
    private static func texts(_ value: JSONValue?, _ field: String) throws(SimulatorError) -> [String] {
        guard let value, !value.isNull else { throw .validation(field, "Field required") }
        if let text = value.stringValue { return [text] }
        guard let items = value.arrayValue, !items.isEmpty else { throw .validation(field, "Input should be a valid string or list") }
        var result: [String] = []
        for (index, item) in items.enumerated() {
            guard let text = item.stringValue ?? item["text"]?.stringValue else { throw .validation("\(field).\(index)", "Input should be a valid string") }
            result.append(text)
        }
        return result
    }

    /// A pair is one prompt: the first text with special tokens, the second appended.
    static func pairTokens(_ first: String, _ second: String) -> Int {
        FakeTokenizer.count(first, addSpecialTokens: true) + FakeTokenizer.count(second, addSpecialTokens: false)
    }

    private static func score(_ first: String, _ second: String) -> Double {
        Double(FakeTokenizer.seed(of: first + "\u{0}" + second) % 1_000_000) / 1_000_000
    }

    private static func usage(_ tokens: Int) -> String {
        "{\"prompt_tokens\":\(tokens),\"total_tokens\":\(tokens),\"completion_tokens\":0,\"prompt_tokens_details\":null}"
    }

    private static func quoted(_ text: String) -> String {
        var result = ""
        result.appendJSONString(text)
        return result
    }

    private static func floatBytes(_ vector: [Double]) -> [UInt8] {
        vector.flatMap { value -> [UInt8] in
            let bits = Float(value).bitPattern
            return [UInt8(bits & 0xFF), UInt8(bits >> 8 & 0xFF), UInt8(bits >> 16 & 0xFF), UInt8(bits >> 24)]
        }
    }

    private static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = Array(bytes[index..<min(index + 3, bytes.count)])
            let value = chunk.enumerated().reduce(0) { $0 | Int($1.element) << (16 - 8 * $1.offset) }
            for position in 0..<4 {
                output.append(position <= chunk.count ? alphabet[(value >> (18 - 6 * position)) & 63] : UInt8(ascii: "="))
            }
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }
}
