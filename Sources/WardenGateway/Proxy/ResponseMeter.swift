import NIOCore
import WardenConfig

/// Token counts as vLLM reports them in a `usage` object.
struct Usage: Sendable, Equatable {
    var prompt: Int
    var completion: Int
    var total: Int { prompt.saturatingAdded(completion) }
}

/// How one route family reports usage (read in vLLM's serving code for each).
struct UsageShape: Equatable {
    /// Where the counts sit: `"usage":{` everywhere but Cohere's `/v2/embed` (`"tokens":{` in `meta`).
    var marker = Array(#""usage":{"#.utf8)
    var promptKey: [UInt8]
    var completionKey: [UInt8]
    /// How the stream event with the summed usage is recognised.
    var finalEvent: FinalEvent
    /// Audio: `{"type":"duration","seconds":S}` costs S × this.
    var tokensPerSecond: Int?
    /// Responses: the response id (`"id":"resp_…"`) is read, so later requests can be tied to the key.
    var capturesResponseID = false

    enum FinalEvent: Equatable {
        /// Chat and completions: the usage event has `"choices":[]`; usage on other events counts one choice.
        case emptyChoices
        /// Every usage object is the running total: the last one seen is final.
        case lastUsage
        /// Anthropic: the event of this type carries the total (`message_start`'s usage is the input only).
        case eventType([UInt8])
    }

    static let openAI = UsageShape(promptKey: Array(#""prompt_tokens":"#.utf8), completionKey: Array(#""completion_tokens":"#.utf8),
                                   finalEvent: .emptyChoices)
    static let responses = UsageShape(promptKey: Array(#""input_tokens":"#.utf8), completionKey: Array(#""output_tokens":"#.utf8),
                                      finalEvent: .lastUsage, capturesResponseID: true)
    static let messages = UsageShape(promptKey: Array(#""input_tokens":"#.utf8), completionKey: Array(#""output_tokens":"#.utf8),
                                     finalEvent: .eventType(Array(#""type":"message_delta""#.utf8)))
    static let cohereEmbed = UsageShape(marker: Array(#""tokens":{"#.utf8), promptKey: Array(#""input_tokens":"#.utf8),
                                        completionKey: Array(#""output_tokens":"#.utf8), finalEvent: .lastUsage)
    static func audio(tokensPerSecond: Int) -> UsageShape {
        UsageShape(promptKey: openAI.promptKey, completionKey: openAI.completionKey, finalEvent: .lastUsage, tokensPerSecond: tokensPerSecond)
    }
}

/// Reads vLLM's token usage from a response as it passes through, and removes from an event stream the one event
/// the gateway asked for that the client did not: the final usage event (`"choices":[]`). Nothing else is ever
/// changed: named events (Responses, Messages) pass byte for byte.
///
/// The final usage — the last `usage` of a JSON body, or a stream's usage event — counts every prompt and choice;
/// continuous usage on other events counts one choice only, so it is kept as a lower bound, never as the charge.
/// Objects that straddle reads are found: unscanned bytes carry over to the next read (at most ``carryLimit``).
struct ResponseMeter {
    enum Format: Equatable {
        /// A JSON body, passed on unchanged.
        case json
        /// Server-sent events; `dropUsageEvent` when the gateway added `include_usage` to the request.
        case eventStream(dropUsageEvent: Bool)
    }

    let format: Format
    let shape: UsageShape
    /// The final usage, once seen.
    private(set) var final: Usage?
    /// The Responses API id of this response, when the shape captures it.
    private(set) var responseID: String?
    /// The largest running (continuous) usage seen on a stream.
    private(set) var running: Usage?
    /// Whether the stream carried an error event (vLLM failed after the head).
    private(set) var sawErrorEvent = false
    private var pending: [UInt8] = []

    /// Longest stretch of unscanned bytes kept; a usage object is a few hundred bytes.
    static let carryLimit = 64 * 1024

    init(format: Format, shape: UsageShape = .openAI) {
        self.format = format
        self.shape = shape
    }

    /// Usage vLLM sends in a response header (`metadata`, for `encoding_format: bytes` embeddings).
    mutating func readHead(metadata: String?) {
        guard let metadata else { return }
        var bytes = Array(metadata.utf8)
        let found = bytes.withUnsafeBytes { UsageScanner.firstUsage(in: $0, shape: shape)?.0 }
        if let found { final = found }
        bytes.removeAll()
    }

    /// Consumes bytes from vLLM; returns what goes to the client (`nil`: the input unchanged, no copy made).
    mutating func consume(_ buffer: ByteBuffer) -> ByteBuffer? {
        switch format {
        case .json:
            scanJSON(buffer)
            return nil
        case .eventStream(let dropUsageEvent):
            return filterEvents(buffer, dropUsageEvent: dropUsageEvent)
        }
    }

    /// What is left when the stream ends without a final blank line (passed on unchanged).
    mutating func flush() -> [UInt8] {
        guard case .eventStream = format else { return [] }
        defer { pending = [] }
        return pending
    }

    // MARK: - JSON bodies

    private mutating func scanJSON(_ buffer: ByteBuffer) {
        pending.append(contentsOf: buffer.readableBytesView)
        captureResponseID(in: 0..<pending.count)
        let (found, keepFrom) = pending.withUnsafeBytes { UsageScanner.lastUsage(in: $0, shape: shape) }
        if let found { final = found }
        let keep = max(keepFrom, pending.count - Self.carryLimit)
        pending.removeFirst(min(keep, pending.count))
    }

    // MARK: - Event streams

    private static let emptyChoices = Array(#""choices":[]"#.utf8)
    private static let errorMarkers = [Array(#"data: {"error":"#.utf8), Array("event: error\n".utf8), Array("event: response.failed\n".utf8)]
    private static let responseIDMarker = Array(#""id":"resp"#.utf8)
    /// An id is kept only when it could be asked for again on the allow-list's template.
    private static let storedResponse = RouteTemplate("GET /v1/responses/{id}")!

    private mutating func filterEvents(_ buffer: ByteBuffer, dropUsageEvent: Bool) -> ByteBuffer {
        pending.append(contentsOf: buffer.readableBytesView)
        var output = ByteBuffer()
        output.reserveCapacity(pending.count)
        var start = 0
        var index = 0
        while index + 1 < pending.count {
            if pending[index] == 0x0A, pending[index + 1] == 0x0A {
                if keep(event: start..<index + 2, dropUsageEvent: dropUsageEvent) { output.writeBytes(pending[start..<index + 2]) }
                start = index + 2
                index = start
            } else {
                index += 1
            }
        }
        pending.removeFirst(start)
        if pending.count > Self.carryLimit {
            // Not SSE as vLLM writes it: pass the bytes on rather than hold them.
            output.writeBytes(pending)
            pending.removeAll()
        }
        return output
    }

    /// Reads one whole event's usage; `false` for the usage event the client did not ask for.
    private mutating func keep(event: Range<Int>, dropUsageEvent: Bool) -> Bool {
        captureResponseID(in: event)
        let shape = shape
        let (usage, isFinal, isError) = pending.withUnsafeBytes { bytes -> (Usage?, Bool, Bool) in
            let window = UnsafeRawBufferPointer(rebasing: bytes[event])
            let isError = Self.errorMarkers.contains { UsageScanner.find($0, in: window, within: 0..<min(window.count, $0.count)) != nil }
            guard let (usage, marker) = UsageScanner.firstUsage(in: window, shape: shape) else { return (nil, false, isError) }
            switch shape.finalEvent {
            case .emptyChoices: return (usage, UsageScanner.find(Self.emptyChoices, in: window, within: 0..<marker) != nil, isError)
            case .lastUsage: return (usage, true, isError)
            case .eventType(let type): return (usage, UsageScanner.find(type, in: window, within: 0..<window.count) != nil, isError)
            }
        }
        if isError { sawErrorEvent = true }
        guard let usage else { return true }
        if isFinal {
            final = usage
            // Only the event the gateway itself asked for is ever removed.
            return !(dropUsageEvent && shape.finalEvent == .emptyChoices)
        }
        if usage.total > running?.total ?? -1 { running = usage }
        return true
    }

    /// The first `"id":"resp…"` of a Responses answer (the response object's own id comes first).
    private mutating func captureResponseID(in range: Range<Int>) {
        guard shape.capturesResponseID, responseID == nil else { return }
        responseID = pending.withUnsafeBytes { bytes -> String? in
            let window = UnsafeRawBufferPointer(rebasing: bytes[range])
            guard let found = UsageScanner.find(Self.responseIDMarker, in: window, within: 0..<window.count) else { return nil }
            let start = found.lowerBound + 6  // after `"id":"`
            var end = start
            while end < window.count, end - start <= 128, window[end] != UInt8(ascii: "\"") { end += 1 }
            guard end < window.count, window[end] == UInt8(ascii: "\"") else { return nil }
            let id = String(decoding: UnsafeRawBufferPointer(rebasing: window[start..<end]), as: UTF8.self)
            return Self.storedResponse.matches(method: "GET", path: "/v1/responses/\(id)") ? id : nil
        }
    }
}
