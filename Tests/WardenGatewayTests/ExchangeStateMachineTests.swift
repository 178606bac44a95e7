import NIOCore
import NIOHTTP1
import Testing
@testable import WardenGateway

/// The exchange without sockets: every ending × streaming or not, and what each is charged.
@Suite("exchange state machine: endings and settlement")
struct ExchangeStateMachineTests {
    static let reserved = 1000

    func machine(dropUsageEvent: Bool = false, keepAlive: Bool = true) -> ExchangeStateMachine {
        var machine = ExchangeStateMachine(request: .init(requestID: "r1", keepAlive: keepAlive, reservedTokens: Self.reserved,
                                                          dropUsageEvent: dropUsageEvent, visibleModels: [], isModelList: false))
        #expect(machine.handle(.start) == [.acquireConnection(fresh: false)])
        #expect(machine.handle(.connected(reused: false)) == [.sendRequest])
        return machine
    }

    static func head(_ status: HTTPResponseStatus = .ok, eventStream: Bool) -> UpstreamHead {
        let contentType = eventStream ? "text/event-stream; charset=utf-8" : "application/json"
        return try! UpstreamHead(ByteBuffer(string: "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\ncontent-type: \(contentType)"))
    }

    static let tokenEvent = #"data: {"id":"c","choices":[{"index":0,"delta":{"content":"a"}}]}"# + "\n\n"
    static let usageEvent = #"data: {"id":"c","choices":[],"usage":{"prompt_tokens":7,"total_tokens":19,"completion_tokens":12}}"# + "\n\n"
    static let json = #"{"id":"c","choices":[{"index":0,"message":{"content":"hi"}}],"usage":{"prompt_tokens":7,"total_tokens":19,"completion_tokens":12},"prompt_logprobs":null}"#

    func outcome(_ actions: [ExchangeStateMachine.Action]) -> ExchangeStateMachine.Outcome? {
        for case .finish(let outcome) in actions { return outcome }
        return nil
    }

    @Test("a stream that ends normally is charged vLLM's final usage; the injected usage event never reaches the client")
    func streamCompletes() {
        var machine = machine(dropUsageEvent: true)
        #expect(machine.handle(.responseHead(Self.head(eventStream: true))) == [.writeHead(Self.head(eventStream: true))])
        #expect(machine.handle(.responseBody(ByteBuffer(string: Self.tokenEvent + Self.usageEvent))).isEmpty, "held until the read completes")
        #expect(machine.handle(.readComplete(clientWritable: true)) == [.writeBody(ByteBuffer(string: Self.tokenEvent)), .flush])
        let end = machine.handle(.responseEnd)
        #expect(outcome(end) == .init(status: 200, decision: "allowed", charged: 19, usage: Usage(prompt: 7, completion: 12), upstreamStatus: 200))
        #expect(end.first == .releaseUpstream)
        #expect(end.last == .endResponse(keepAlive: true))
        #expect(machine.isFinished)
        #expect(machine.handle(.clientGone).isEmpty, "a second ending is ignored: settled once")
    }

    @Test("a client that asked for usage receives the usage event unchanged")
    func streamKeepsAskedUsage() {
        var machine = machine(dropUsageEvent: false)
        _ = machine.handle(.responseHead(Self.head(eventStream: true)))
        _ = machine.handle(.responseBody(ByteBuffer(string: Self.usageEvent)))
        #expect(machine.handle(.readComplete(clientWritable: true)) == [.writeBody(ByteBuffer(string: Self.usageEvent)), .flush])
    }

    @Test("the events of one read go out as one body part; what is held when vLLM ends or fails goes out before the end")
    func oneWritePerRead() {
        var machine = machine(dropUsageEvent: false)
        _ = machine.handle(.responseHead(Self.head(eventStream: true)))
        _ = machine.handle(.responseBody(ByteBuffer(string: Self.tokenEvent)))
        _ = machine.handle(.responseBody(ByteBuffer(string: Self.tokenEvent)))
        #expect(machine.handle(.readComplete(clientWritable: true)) == [.writeBody(ByteBuffer(string: Self.tokenEvent + Self.tokenEvent)), .flush])
        _ = machine.handle(.responseBody(ByteBuffer(string: Self.usageEvent)))
        let end = machine.handle(.responseEnd)
        #expect(end.contains(.writeBody(ByteBuffer(string: Self.usageEvent))))
        #expect(end.firstIndex(of: .writeBody(ByteBuffer(string: Self.usageEvent)))! < end.firstIndex(of: .endResponse(keepAlive: true))!)
        var broken = self.machine()
        _ = broken.handle(.responseHead(Self.head(eventStream: true)))
        _ = broken.handle(.responseBody(ByteBuffer(string: Self.tokenEvent)))
        let failed = broken.handle(.upstreamClosed("reset"))
        let held = failed.firstIndex(of: .writeBody(ByteBuffer(string: Self.tokenEvent)))
        #expect(held != nil && held! < failed.firstIndex { if case .writeStreamError = $0 { true } else { false } }!)
    }

    @Test("every ending without vLLM's final usage is charged the reservation", arguments: [
        ExchangeStateMachine.Event.clientGone, .upstreamClosed("reset"), .terminate,
    ])
    func incompleteStreamsPayReservation(ending: ExchangeStateMachine.Event) {
        var machine = machine()
        _ = machine.handle(.responseHead(Self.head(eventStream: true)))
        _ = machine.handle(.responseBody(ByteBuffer(string: Self.tokenEvent)))
        let actions = machine.handle(ending)
        #expect(outcome(actions)?.charged == Self.reserved)
        #expect(actions.first == .closeUpstream, "vLLM's connection is closed so it aborts")
    }

    @Test("a non-streaming request abandoned by its client pays the reservation; one that completed pays its usage")
    func nonStreaming() {
        var abandoned = machine()
        #expect(outcome(abandoned.handle(.clientGone))?.charged == Self.reserved)
        var complete = machine()
        _ = complete.handle(.responseHead(Self.head(eventStream: false)))
        let json = Array(Self.json.utf8)
        // The usage object straddles two reads.
        let split = Self.json.utf8.count - 60
        _ = complete.handle(.responseBody(ByteBuffer(bytes: json[..<split])))
        #expect(complete.handle(.readComplete(clientWritable: true)) == [.writeBody(ByteBuffer(bytes: json[..<split])), .flush])
        _ = complete.handle(.responseBody(ByteBuffer(bytes: json[split...])))
        #expect(outcome(complete.handle(.responseEnd))?.charged == 19)
    }

    @Test("the client leaving after the final usage event pays exactly that usage")
    func goneAfterUsage() {
        var machine = machine(dropUsageEvent: true)
        _ = machine.handle(.responseHead(Self.head(eventStream: true)))
        _ = machine.handle(.responseBody(ByteBuffer(string: Self.usageEvent)))
        #expect(outcome(machine.handle(.clientGone))?.charged == 19)
    }

    @Test("never reaching vLLM costs nothing; a 404 from vLLM costs nothing; a 400 (vLLM returns it after generating too) and a 5xx cost the reservation")
    func upstreamRefusals() {
        var unreachable = ExchangeStateMachine(request: .init(requestID: "r", keepAlive: true, reservedTokens: 50, dropUsageEvent: false,
                                                              visibleModels: [], isModelList: false))
        _ = unreachable.handle(.start)
        let failed = unreachable.handle(.connectFailed("refused"))
        #expect(outcome(failed)?.charged == 0)
        #expect(outcome(failed)?.status == 503)
        // A request queued behind a handshake that then failed never reached vLLM either.
        var queued = ExchangeStateMachine(request: .init(requestID: "q", keepAlive: true, reservedTokens: 50, dropUsageEvent: false,
                                                         visibleModels: [], isModelList: false))
        _ = queued.handle(.start)
        #expect(queued.handle(.connected(reused: false, delivered: false)) == [.sendRequest])
        let handshakeFailed = queued.handle(.connectFailed("connect failed: Connection refused"))
        #expect(handshakeFailed.first == .closeUpstream)
        #expect(outcome(handshakeFailed)?.charged == 0)
        #expect(outcome(handshakeFailed)?.status == 503)
        // A client that leaves while the handshake is under way owes nothing; once the request is delivered, it does.
        for delivered in [false, true] {
            var waiting = ExchangeStateMachine(request: .init(requestID: "w", keepAlive: true, reservedTokens: 50, dropUsageEvent: false,
                                                              visibleModels: [], isModelList: false))
            _ = waiting.handle(.start)
            _ = waiting.handle(.connected(reused: false, delivered: false))
            if delivered { #expect(waiting.handle(.requestDelivered).isEmpty) }
            let left = waiting.handle(.clientGone)
            #expect(outcome(left)?.charged == (delivered ? 50 : 0))
            #expect(outcome(left)?.status == 499)
        }

        var unknownModel = machine()
        _ = unknownModel.handle(.responseHead(Self.head(.notFound, eventStream: false)))
        _ = unknownModel.handle(.responseBody(ByteBuffer(string: #"{"error":{"message":"The model `x` does not exist."}}"#)))
        #expect(outcome(unknownModel.handle(.responseEnd))?.charged == 0)
        var refused = machine()
        _ = refused.handle(.responseHead(Self.head(.badRequest, eventStream: false)))
        _ = refused.handle(.responseBody(ByteBuffer(string: #"{"error":{"message":"could not parse the output"}}"#)))
        #expect(outcome(refused.handle(.responseEnd))?.charged == Self.reserved)

        var failedUpstream = machine()
        #expect(failedUpstream.handle(.responseHead(Self.head(.internalServerError, eventStream: false))).isEmpty, "5xx text is replaced")
        _ = failedUpstream.handle(.responseBody(ByteBuffer(string: #"{"error":{"message":"0x7f00 leaked"}}"#)))
        let ended = failedUpstream.handle(.responseEnd)
        #expect(outcome(ended)?.charged == Self.reserved)
        #expect(outcome(ended)?.status == 502)
    }

    @Test("a reused connection closed before any byte is retried once on a fresh one")
    func retryOnce() {
        var machine = ExchangeStateMachine(request: .init(requestID: "r", keepAlive: true, reservedTokens: 5, dropUsageEvent: false,
                                                          visibleModels: [], isModelList: false))
        _ = machine.handle(.start)
        _ = machine.handle(.connected(reused: true))
        #expect(machine.handle(.upstreamClosed("eof")) == [.closeUpstream, .acquireConnection(fresh: true)])
        _ = machine.handle(.connected(reused: false))
        let second = machine.handle(.upstreamClosed("eof"))
        #expect(outcome(second)?.status == 503)
        #expect(outcome(second)?.charged == 5, "the request reached vLLM: it may have generated")
    }

    @Test("a client that stops reading: vLLM is paused, then cut off at the write timeout and the reservation charged")
    func stalledClient() {
        var machine = machine()
        _ = machine.handle(.responseHead(Self.head(eventStream: true)))
        _ = machine.handle(.responseBody(ByteBuffer(string: Self.tokenEvent)))
        #expect(machine.handle(.readComplete(clientWritable: false)) == [.writeBody(ByteBuffer(string: Self.tokenEvent)), .flush, .pauseUpstream, .startStallTimer])
        #expect(machine.handle(.readComplete(clientWritable: false)) == [.flush], "paused once")
        #expect(machine.handle(.clientWritable) == [.cancelStallTimer, .resumeUpstream])
        _ = machine.handle(.readComplete(clientWritable: false))
        let cut = machine.handle(.stallTimeout)
        #expect(cut.first == .closeUpstream)
        #expect(cut.last == .closeClient)
        #expect(outcome(cut)?.decision == "client_stalled")
        #expect(outcome(cut)?.charged == Self.reserved)
    }

    @Test("drain ends a stream with a terminal shutting_down event; a request not yet answered gets 503")
    func drain() {
        var streaming = machine()
        _ = streaming.handle(.responseHead(Self.head(eventStream: true)))
        let ended = streaming.handle(.terminate)
        #expect(ended.contains(.writeStreamError(message: "The gateway is shutting down; the stream was ended before completion.", code: "shutting_down")))
        #expect(ended.last == .endResponse(keepAlive: false))
        var waiting = machine()
        let refused = waiting.handle(.terminate)
        #expect(outcome(refused)?.status == 503)
        #expect(refused.last == .respond(.draining, keepAlive: false))
    }

    @Test("an in-stream error event from vLLM is passed on, logged, and charged the reservation")
    func errorEvent() {
        var machine = machine()
        _ = machine.handle(.responseHead(Self.head(eventStream: true)))
        _ = machine.handle(.responseBody(ByteBuffer(string: #"data: {"error":{"message":"engine died"}}"# + "\n\ndata: [DONE]\n\n")))
        let end = machine.handle(.responseEnd)
        #expect(outcome(end)?.decision == "upstream_error_event")
        #expect(outcome(end)?.charged == Self.reserved)
    }
}

@Suite("response meter: usage read across reads, only the gateway's own event removed")
struct ResponseMeterTests {
    static let events = [
        #"data: {"id":"c","choices":[{"index":0,"delta":{"content":"a"}}],"usage":{"prompt_tokens":7,"total_tokens":8,"completion_tokens":1}}"# + "\n\n",
        #"data: {"id":"c","choices":[{"index":1,"delta":{"content":"b"}}],"usage":{"prompt_tokens":7,"total_tokens":8,"completion_tokens":1}}"# + "\n\n",
        #"data: {"id":"c","choices":[],"usage":{"prompt_tokens":7,"total_tokens":9,"completion_tokens":2}}"# + "\n\n",
        "data: [DONE]\n\n",
    ]

    func run(_ meter: inout ResponseMeter, _ text: String, chunkSize: Int) -> String {
        let bytes = Array(text.utf8)
        var output: [UInt8] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + chunkSize)
            let chunk = ByteBuffer(bytes: bytes[offset..<end])
            output += Array((meter.consume(chunk) ?? chunk).readableBytesView)
            offset = end
        }
        return String(decoding: output + meter.flush(), as: UTF8.self)
    }

    @Test("whatever the chunking, the final usage is read and the injected event removed byte for byte", arguments: [1, 7, 64, 4096])
    func chunking(chunkSize: Int) {
        var dropping = ResponseMeter(format: .eventStream(dropUsageEvent: true))
        #expect(run(&dropping, Self.events.joined(), chunkSize: chunkSize) == Self.events[0] + Self.events[1] + Self.events[3])
        #expect(dropping.final == Usage(prompt: 7, completion: 2))
        var keeping = ResponseMeter(format: .eventStream(dropUsageEvent: false))
        #expect(run(&keeping, Self.events.joined(), chunkSize: chunkSize) == Self.events.joined())
        var json = ResponseMeter(format: .json)
        let body = #"{"choices":[{"text":"x"}],"usage":{"prompt_tokens":3,"total_tokens":5,"completion_tokens":2,"prompt_tokens_details":null},"kv_transfer_params":null}"#
        #expect(run(&json, body, chunkSize: chunkSize) == body)
        #expect(json.final == Usage(prompt: 3, completion: 2))
    }

    @Test("JSON bodies: the last complete usage counts, whatever the chunking, with braces and quoted markers in the text before it")
    func lastJSONUsage() {
        let body = #"{"choices":[{"text":"{{\"usage\":{\"prompt_tokens\":99}"}],"usage":{"prompt_tokens":1,"completion_tokens":1},"#
            + #""x":{"y":{}},"usage":{"prompt_tokens":4,"completion_tokens":6,"details":{"a":{}}},"tail":"}{"}"#
        for chunkSize in [1, 2, 3, 8, 9, 17, 4096] {
            var json = ResponseMeter(format: .json)
            #expect(run(&json, body, chunkSize: chunkSize) == body)
            #expect(json.final == Usage(prompt: 4, completion: 6), "chunks of \(chunkSize)")
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let bytes = (0..<Int.random(in: 0...40, using: &generator)).map { _ in [UInt8(ascii: "{"), UInt8(ascii: "a"), 0, 0xFF].randomElement(using: &generator)! }
            let end = Int.random(in: 0...bytes.count, using: &generator), lowest = Int.random(in: 0...max(0, end), using: &generator)
            let expected = (lowest..<end).last { bytes[$0] == UInt8(ascii: "{") }
            #expect(bytes.withUnsafeBytes { UsageScanner.lastIndex(of: UInt8(ascii: "{"), in: $0, before: end, notBelow: lowest) } == expected, "\(bytes) \(lowest)..<\(end)")
        }
        // `find`: the first occurrence wholly inside the range, as a naive search sees it.
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0...30, using: &generator)).map { _ in Array("ab{".utf8).randomElement(using: &generator)! }
            let needle = (0..<Int.random(in: 1...3, using: &generator)).map { _ in Array("ab{".utf8).randomElement(using: &generator)! }
            let lower = Int.random(in: 0...bytes.count, using: &generator), upper = Int.random(in: lower...bytes.count, using: &generator)
            let naive = upper - lower < needle.count ? nil : (lower...(upper - needle.count)).first { Array(bytes[$0..<$0 + needle.count]) == needle }
            let found = bytes.withUnsafeBytes { UsageScanner.find(needle, in: $0, within: lower..<upper) }
            #expect(found == naive.map { $0..<$0 + needle.count }, "\(bytes) \(needle) \(lower)..<\(upper)")
        }
    }

    @Test("a read of whole kept events goes on as the same buffer; a stream that is not SSE is passed on once past the carry limit")
    func noCopyAndCarryLimit() {
        var meter = ResponseMeter(format: .eventStream(dropUsageEvent: true))
        let whole = ByteBuffer(string: Self.events[0] + Self.events[1])
        let passed = meter.consume(whole)
        #expect(passed.map { $0.readableBytesView.elementsEqual(whole.readableBytesView) } == true)
        var unframed = ResponseMeter(format: .eventStream(dropUsageEvent: true))
        let text = String(repeating: "data: x\n", count: ResponseMeter.carryLimit / 8 + 10)
        #expect(run(&unframed, text, chunkSize: 4096) == text, "every byte passes, in order, even without a blank line")
        var split = ResponseMeter(format: .eventStream(dropUsageEvent: true))
        let events = Self.events.joined()
        let half = events.utf8.count / 2
        let first = split.consume(ByteBuffer(bytes: Array(events.utf8)[..<half])).map { Array($0.readableBytesView) } ?? []
        let second = split.consume(ByteBuffer(bytes: Array(events.utf8)[half...])).map { Array($0.readableBytesView) } ?? []
        #expect(String(decoding: first + second + split.flush(), as: UTF8.self) == Self.events[0] + Self.events[1] + Self.events[3])
    }

    @Test("continuous usage counts one choice: it is kept as running usage, never as the final count")
    func continuousIsNotFinal() {
        var meter = ResponseMeter(format: .eventStream(dropUsageEvent: false))
        _ = run(&meter, Self.events[0] + Self.events[1], chunkSize: 3)
        #expect(meter.final == nil)
        #expect(meter.running == Usage(prompt: 7, completion: 1))
    }

    @Test("absurd usage numbers saturate instead of trapping")
    func hugeNumbers() {
        var meter = ResponseMeter(format: .json)
        _ = run(&meter, #"{"usage":{"prompt_tokens":99999999999999999999999999,"completion_tokens":99999999999999999999}}"#, chunkSize: 9)
        #expect(meter.final?.prompt == Int.max)
        #expect(meter.final?.total == Int.max)
    }

    static let responsesStream = [
        "event: response.created\ndata: " + #"{"response":{"id":"resp_abc","status":"in_progress","usage":null},"sequence_number":0,"type":"response.created"}"# + "\n\n",
        "event: response.output_text.delta\ndata: " + #"{"delta":"\"usage\":{\"input_tokens\":1}","sequence_number":1,"type":"response.output_text.delta"}"# + "\n\n",
        "event: response.completed\ndata: " + #"{"response":{"id":"resp_abc","status":"completed","usage":{"input_tokens":11,"input_tokens_details":{"cached_tokens":0},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":16}},"sequence_number":2,"type":"response.completed"}"# + "\n\n",
    ]

    @Test("Responses streams: usage on response.completed is final, the id is captured, every byte passes", arguments: [1, 5, 4096])
    func responsesEvents(chunkSize: Int) {
        var meter = ResponseMeter(format: .eventStream(dropUsageEvent: true), shape: .responses)
        #expect(run(&meter, Self.responsesStream.joined(), chunkSize: chunkSize) == Self.responsesStream.joined(), "nothing removed, even asked to")
        #expect(meter.final == Usage(prompt: 11, completion: 5))
        #expect(meter.responseID == "resp_abc")
    }

    static let plantedTools = #""tools":[{"type":"function","name":"f","parameters":{"properties":{"usage":{"input_tokens":0,"output_tokens":0}}}}]"#

    @Test("Responses: the response object's own usage member is the charge, not one the client planted in its echoed tools", arguments: [1, 7, 4096])
    func responsesPlantedUsage(chunkSize: Int) {
        let real = #""usage":{"input_tokens":500,"input_tokens_details":{"cached_tokens":0},"output_tokens":1000,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":1500}"#
        let body = #"{"id":"resp_abc","object":"response",\#(Self.plantedTools),"status":"completed","text":{"format":{"usage":{"input_tokens":1}}},\#(real),"user":null}"#
        var json = ResponseMeter(format: .json, shape: .responses)
        let cut = body.range(of: #""usage":{"input_tokens":500"#)!.lowerBound
        _ = run(&json, String(body[..<cut]), chunkSize: chunkSize)
        #expect(json.final == nil, "a body cut off before vLLM's usage has none, whatever the tools held")
        _ = run(&json, String(body[cut...]), chunkSize: chunkSize)
        #expect(json.final == Usage(prompt: 500, completion: 1000))
        var queued = ResponseMeter(format: .json, shape: .responses)
        _ = run(&queued, #"{"id":"resp_q",\#(Self.plantedTools),"status":"queued","usage":null,"user":null}"#, chunkSize: chunkSize)
        #expect(queued.final == nil, "no usage yet: the planted one is not it")
        let events = [
            "event: response.created\ndata: " + #"{"response":{"id":"resp_abc",\#(Self.plantedTools),"usage":null},"type":"response.created"}"# + "\n\n",
            "event: response.completed\ndata: " + #"{"response":{"id":"resp_abc",\#(Self.plantedTools),\#(real)},"type":"response.completed"}"# + "\n\n",
        ]
        var stream = ResponseMeter(format: .eventStream(dropUsageEvent: false), shape: .responses)
        #expect(run(&stream, events[0], chunkSize: chunkSize) == events[0])
        #expect(stream.final == nil)
        _ = run(&stream, events[1], chunkSize: chunkSize)
        #expect(stream.final == Usage(prompt: 500, completion: 1000))
    }

    @Test("Anthropic streams: message_start's input is running usage, message_delta's is final")
    func messagesEvents() {
        let start = "event: message_start\ndata: " + #"{"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":9,"output_tokens":0}}}"# + "\n\n"
        let delta = "event: message_delta\ndata: " + #"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":9,"output_tokens":4}}"# + "\n\n"
        var meter = ResponseMeter(format: .eventStream(dropUsageEvent: false), shape: .messages)
        _ = run(&meter, start, chunkSize: 4)
        #expect(meter.final == nil && meter.running == Usage(prompt: 9, completion: 0))
        #expect(run(&meter, delta, chunkSize: 4) == delta)
        #expect(meter.final == Usage(prompt: 9, completion: 4))
        var error = ResponseMeter(format: .eventStream(dropUsageEvent: false), shape: .messages)
        _ = run(&error, "event: error\ndata: {\"type\":\"error\"}\n\n", chunkSize: 3)
        #expect(error.sawErrorEvent, "a named error event counts as vLLM failing")
    }

    @Test("usage in the metadata header, Cohere's meta.tokens, and audio seconds × the rate (fractions round up)")
    func otherShapes() {
        var header = ResponseMeter(format: .json)
        header.readHead(metadata: #"{"id":"e","data":[],"usage":{"prompt_tokens":12,"total_tokens":12}}"#)
        #expect(header.final == Usage(prompt: 12, completion: 0))
        var spaced = ResponseMeter(format: .json)
        spaced.readHead(metadata: #"{"id": "e", "data": [{"index": 0, "shape": [8]}], "usage": {"prompt_tokens": 12, "total_tokens": 12}}"#)
        #expect(spaced.final == Usage(prompt: 12, completion: 0), "as vLLM writes it, with Python's json.dumps")
        var cohere = ResponseMeter(format: .json, shape: .cohereEmbed)
        _ = run(&cohere, #"{"id":"e","embeddings":{},"meta":{"api_version":{"version":"2"},"tokens":{"input_tokens":21}}}"#, chunkSize: 6)
        #expect(cohere.final == Usage(prompt: 21, completion: 0))
        var audio = ResponseMeter(format: .json, shape: .audio(tokensPerSecond: 50))
        _ = run(&audio, #"{"text":"hi","usage":{"type":"duration","seconds":2.25}}"#, chunkSize: 5)
        #expect(audio.final == Usage(prompt: 150, completion: 0), "3 seconds (2.25 rounded up) × 50")
        var counted = ResponseMeter(format: .json, shape: .audio(tokensPerSecond: 50))
        _ = run(&counted, #"{"text":"hi","usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}"#, chunkSize: 7)
        #expect(counted.final == nil, "token counts say nothing of the seconds decoded: the reservation stands")
    }
}

extension ExchangeStateMachine {
    /// One event's actions as an array of their own, for expectations.
    mutating func handle(_ event: Event) -> [Action] {
        var actions: [Action] = []
        handle(event, into: &actions)
        return actions
    }
}
