import WardenJSON
import NIOCore
import WardenConfig
#if canImport(Glibc)
import Glibc
#endif

/// Token counts as vLLM reports them in a `usage` object.
struct Usage: Sendable, Equatable {
    var prompt: Int
    var completion: Int
    var total: Int { prompt.saturatingAdded(completion) }
}

/// How one route family reports usage (read in vLLM's serving code for each). Immutable and shared by reference:
/// every exchange and meter holds one, and a struct of four byte arrays cost four retains per copy.
final class UsageShape: Equatable, Sendable {
    /// Where the counts sit: `"usage":{` everywhere but Cohere's `/v2/embed` (`"tokens":{` in `meta`).
    let marker: [UInt8]
    let promptKey: [UInt8]
    let completionKey: [UInt8]
    /// How the stream event with the summed usage is recognised.
    let finalEvent: FinalEvent
    /// Audio: `{"type":"duration","seconds":S}` costs S × this.
    let tokensPerSecond: Int?
    /// Responses: the response id (`"id":"resp_…"`) is read, so later requests can be tied to the key.
    let capturesResponseID: Bool
    /// Responses: the answer echoes the client's `tools`, `text` and `metadata`, so the usage is the member of the
    /// response object itself (``ShallowUsageReader``), never merely the first or last `"usage":{` in the bytes.
    let usageAtTopLevel: Bool

    init(marker: [UInt8] = Array(#""usage":{"#.utf8), promptKey: [UInt8], completionKey: [UInt8], finalEvent: FinalEvent,
         tokensPerSecond: Int? = nil, capturesResponseID: Bool = false, usageAtTopLevel: Bool = false) {
        self.marker = marker
        self.promptKey = promptKey
        self.completionKey = completionKey
        self.finalEvent = finalEvent
        self.tokensPerSecond = tokensPerSecond
        self.capturesResponseID = capturesResponseID
        self.usageAtTopLevel = usageAtTopLevel
    }

    static func == (lhs: UsageShape, rhs: UsageShape) -> Bool {
        lhs === rhs || (lhs.marker == rhs.marker && lhs.promptKey == rhs.promptKey && lhs.completionKey == rhs.completionKey
            && lhs.finalEvent == rhs.finalEvent && lhs.tokensPerSecond == rhs.tokensPerSecond
            && lhs.capturesResponseID == rhs.capturesResponseID && lhs.usageAtTopLevel == rhs.usageAtTopLevel)
    }

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
                                      finalEvent: .lastUsage, capturesResponseID: true, usageAtTopLevel: true)
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
    /// A JSON body's usage, for shapes whose usage is found by its depth.
    private var topLevel: ShallowUsageReader?

    /// Longest stretch of unscanned bytes kept; a usage object is a few hundred bytes.
    static let carryLimit = 64 * 1024

    init(format: Format, shape: UsageShape = .openAI) {
        self.format = format
        self.shape = shape
        if shape.usageAtTopLevel, format == .json { topLevel = ShallowUsageReader(shape: shape, expectedDepth: 1) }
    }

    /// Usage vLLM sends in a response header (`metadata`, for `encoding_format: bytes` embeddings).
    /// vLLM writes it with Python's `json.dumps` (`"usage": {"prompt_tokens": 5, …}`, spaces after `:` and `,`), so
    /// it is read as JSON and its top-level `usage` handed to the scanner in the compact form the scanner matches.
    mutating func readHead(metadata: String?) {
        guard let metadata, let document = try? JSONValue.parse(metadata), let usage = document["usage"], usage.objectValue != nil else { return }
        let compact = Array(("{\"usage\":" + usage.serialized + "}").utf8)
        if let found = compact.withUnsafeBytes({ UsageScanner.firstUsage(in: $0, shape: shape)?.0 }) { final = found }
    }

    /// Consumes bytes from vLLM; returns what goes to the client (`nil`: the input unchanged, no copy made).
    mutating func consume(_ buffer: ByteBuffer) -> ByteBuffer? {
        switch format {
        case .json:
            scanJSON(buffer)
            if topLevel != nil {
                buffer.withUnsafeReadableBytes { topLevel!.feed($0) }
                if let usage = topLevel!.member ?? nil { final = usage }
            }
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

    /// A read is scanned where it lies; only its tail that may start a usage object is kept for the next one.
    private mutating func scanJSON(_ buffer: ByteBuffer) {
        guard pending.isEmpty else {
            pending.append(contentsOf: buffer.readableBytesView)
            let keep = pending.withUnsafeBytes { [self] in scanJSON(window: $0) }
            record(keep.found)
            pending.removeFirst(min(keep.from, pending.count))
            return
        }
        let (found, tail) = buffer.withUnsafeReadableBytes { [self] bytes in
            let keep = scanJSON(window: bytes)
            return (keep.found, keep.from < bytes.count ? Array(bytes[keep.from...]) : [])
        }
        record(found)
        pending = tail
    }

    private func scanJSON(window: UnsafeRawBufferPointer) -> (found: (usage: Usage?, id: String?), from: Int) {
        let scan = UsageScanner.lastUsage(in: window, shape: shape)
        let id = responseID == nil ? Self.responseID(in: window, shape: shape) : nil
        return ((scan.usage, id), max(scan.keepFrom, window.count - Self.carryLimit))
    }

    private mutating func record(_ found: (usage: Usage?, id: String?)) {
        if let id = found.id { responseID = id }
        if let usage = found.usage, topLevel == nil { final = usage }
    }

    // MARK: - Event streams

    private static let emptyChoices = Array(#""choices":[]"#.utf8)
    private static let errorMarkers = [Array(#"data: {"error":"#.utf8), Array("event: error\n".utf8), Array("event: response.failed\n".utf8)]
    private static let responseIDMarker = Array(#""id":"resp"#.utf8)
    /// An id is kept only when it could be asked for again on the allow-list's template.
    private static let storedResponse = RouteTemplate("GET /v1/responses/{id}")!

    /// Whole events are read where they lie: in the common case (every event of the read complete and kept) the
    /// read goes on as it came, without a copy. Only a dropped event or a partial one at the end costs copies.
    private mutating func filterEvents(_ buffer: ByteBuffer, dropUsageEvent: Bool) -> ByteBuffer {
        guard pending.isEmpty else {
            pending.append(contentsOf: buffer.readableBytesView)
            let carried = pending
            pending = []
            return carried.withUnsafeBytes { filter($0, whole: nil, dropUsageEvent: dropUsageEvent) }
        }
        return buffer.withUnsafeReadableBytes { filter($0, whole: buffer, dropUsageEvent: dropUsageEvent) }
    }

    /// Splits `bytes` into events; `whole` is the buffer `bytes` came from, returned as is when nothing changes.
    private mutating func filter(_ bytes: UnsafeRawBufferPointer, whole: ByteBuffer?, dropUsageEvent: Bool) -> ByteBuffer {
        var output: ByteBuffer?  // made only once an event is dropped: the kept events before it are copied in
        var start = 0
        while let end = Self.eventEnd(in: bytes, from: start) {
            let event = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
            if keep(event: event, dropUsageEvent: dropUsageEvent) {
                output?.writeBytes(event)
            } else if output == nil {
                output = ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: bytes[0..<start]))
            }
            start = end
        }
        let rest = UnsafeRawBufferPointer(rebasing: bytes[start...])
        // Not SSE as vLLM writes it when the rest grows past the limit: pass the bytes on rather than hold them.
        let passRest = rest.count > Self.carryLimit
        if !passRest { pending.append(contentsOf: rest) }
        if var output {
            if passRest { output.writeBytes(rest) }
            return output
        }
        if let whole, start == bytes.count || passRest { return whole }
        return ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: bytes[0..<(passRest ? bytes.count : start)]))
    }

    /// The end of the event starting at `start` (just past its blank line), if it is complete.
    private static func eventEnd(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var position = start
        while position + 1 < bytes.count {
            guard let newline = memchr(bytes.baseAddress! + position, 0x0A, bytes.count - position - 1) else { return nil }
            position = bytes.baseAddress!.distance(to: UnsafeRawPointer(newline))
            if bytes[position + 1] == 0x0A { return position + 2 }
            position += 1
        }
        return nil
    }

    /// Reads one whole event's usage; `false` for the usage event the client did not ask for.
    private mutating func keep(event window: UnsafeRawBufferPointer, dropUsageEvent: Bool) -> Bool {
        if responseID == nil, let id = Self.responseID(in: window, shape: shape) { responseID = id }
        let shape = shape
        let isError = Self.errorMarkers.contains { window.count >= $0.count && window.starts(with: $0) }
        if isError { sawErrorEvent = true }
        // Read byte by byte only when the event names a usage object at all (deltas do not).
        if shape.usageAtTopLevel {
            guard UsageScanner.find(shape.marker, in: window, within: 0..<window.count) != nil else { return true }
            var reader = ShallowUsageReader(shape: shape, expectedDepth: 2)
            reader.feed(window)
            if let usage = reader.member ?? nil { final = usage }
            return true
        }
        guard let (usage, marker) = UsageScanner.firstUsage(in: window, shape: shape) else { return true }
        let isFinal = switch shape.finalEvent {
        case .emptyChoices: UsageScanner.find(Self.emptyChoices, in: window, within: 0..<marker) != nil
        case .lastUsage: true
        case .eventType(let type): UsageScanner.find(type, in: window, within: 0..<window.count) != nil
        }
        if isFinal {
            final = usage
            // Only the event the gateway itself asked for is ever removed.
            return !(dropUsageEvent && shape.finalEvent == .emptyChoices)
        }
        if usage.total > running?.total ?? -1 { running = usage }
        return true
    }

    /// The first `"id":"resp…"` of a Responses answer (the response object's own id comes first), when the shape
    /// captures it.
    private static func responseID(in window: UnsafeRawBufferPointer, shape: UsageShape) -> String? {
        guard shape.capturesResponseID,
              let found = UsageScanner.find(Self.responseIDMarker, in: window, within: 0..<window.count) else { return nil }
        let start = found.lowerBound + 6  // after `"id":"`
        var end = start
        while end < window.count, end - start <= 128, window[end] != UInt8(ascii: "\"") { end += 1 }
        guard end < window.count, window[end] == UInt8(ascii: "\"") else { return nil }
        let id = String(decoding: UnsafeRawBufferPointer(rebasing: window[start..<end]), as: UTF8.self)
        return Self.storedResponse.matches(method: "GET", path: "/v1/responses/\(id)") ? id : nil
    }
}
