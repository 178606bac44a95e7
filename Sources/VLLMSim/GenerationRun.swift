import NIOCore
import WardenNIOSupport
import NIOHTTP1

/// Drives one chat or completion request on its connection's event loop: waits for a sequence slot, paces
/// tokens, writes SSE events or the final JSON, injects faults, and counts an abort when the client leaves.
final class GenerationRun {
    private enum Phase { case waiting, running, abortedWhileQueued, finished }

    private let id: UInt64
    private let plan: GenerationPlan
    private var encoder: ResponseEncoder
    /// `METHOD /path`, for the per-route counts of `/sim/stats`.
    private let route: String
    private let core: SimulatorCore
    private let context: ChannelHandlerContext
    private let keepAlive: Bool
    private let timing: Timing
    private let onFinished: (GenerationRun) -> Void
    private let arrival = NIODeadline.now()

    private var phase = Phase.waiting
    private var step = 0
    private var scheduled: Scheduled<Void>?

    struct Timing {
        var headDelay: TimeAmount
        var timeToFirstToken: TimeAmount
        var interTokenLatency: TimeAmount
        var closeAfterTokens: Int?
        var errorAfterTokens: Int?
    }

    init(id: UInt64, route: String, plan: GenerationPlan, encoder: ResponseEncoder, core: SimulatorCore, context: ChannelHandlerContext,
         keepAlive: Bool, timing: Timing, onFinished: @escaping (GenerationRun) -> Void) {
        self.id = id
        self.route = route
        self.plan = plan
        self.encoder = encoder
        self.core = core
        self.context = context
        self.keepAlive = keepAlive
        self.timing = timing
        self.onFinished = onFinished
    }

    private var request: GenerationRequest { plan.request }
    private var generatedTokens: Int { step * plan.choiceCount }

    /// Starts at once when a sequence slot is free, else when one frees up.
    func begin() {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        if core.state.admit(id: id, start: { eventLoop.execute { bound.value.start() } }) { start() }
    }

    /// The client closed the connection: stop generating and count the abort, whatever the phase.
    func clientWentAway() {
        switch phase {
        case .waiting:
            phase = core.state.cancelWaiting(id: id) ? .finished : .abortedWhileQueued
            if phase == .finished { onFinished(self) }
        case .running:
            scheduled?.cancel()
            finish(.abort)
        case .abortedWhileQueued, .finished:
            break
        }
    }

    private func start() {
        if phase == .abortedWhileQueued {
            // The client left while the slot was being handed to us: give it back, counted as an abort.
            finish(.abort)
            return
        }
        phase = .running
        after(timing.headDelay) {
            if self.request.stream { self.writeStreamHead() }
            self.after(self.timing.timeToFirstToken) { self.advance() }
        }
    }

    private func after(_ delay: TimeAmount, _ work: @escaping () -> Void) {
        guard phase == .running else { return }
        if delay == .zero {
            work()
        } else {
            scheduled = context.eventLoop.assumeIsolated().scheduleTask(in: delay, work)
        }
    }

    /// Emits one token per choice, then schedules the next step (or loops when there is no pacing).
    private func advance() {
        while phase == .running {
            if step == 0 { firstToken() }
            if let closeAfter = timing.closeAfterTokens, step >= closeAfter {
                context.flush()
                finish(.error)
                context.close(promise: nil)
                return
            }
            if let errorAfter = timing.errorAfterTokens, step >= errorAfter {
                failMidway()
                return
            }
            let last = step + 1 == plan.tokensPerChoice
            if request.stream {
                for choice in 0..<plan.choiceCount {
                    let usage = request.continuousUsage ? Usage(promptTokens: request.promptTokens, completionTokens: step + 1) : nil
                    write(encoder.tokenChunk(choice: choice, text: plan.token(choice: choice, step: step),
                                             finishReason: last ? plan.finishReason : nil, usage: usage))
                }
            }
            step += 1
            if last {
                complete()
                return
            }
            if timing.interTokenLatency != .zero {
                context.flush()
                scheduled = context.eventLoop.assumeIsolated().scheduleTask(in: timing.interTokenLatency) { self.advance() }
                return
            }
        }
    }

    private func firstToken() {
        let elapsed = NIODeadline.now() - arrival
        core.state.recordTimeToFirstToken(seconds: Double(elapsed.nanoseconds) / 1e9)
        guard request.stream else { return }
        let usage = request.continuousUsage ? Usage(promptTokens: request.promptTokens, completionTokens: 0) : nil
        write(encoder.opening(choices: plan.choiceCount, usage: usage, request: request))
    }

    private func complete() {
        let usage = Usage(promptTokens: request.promptTokens, completionTokens: generatedTokens)
        let texts = (0..<plan.choiceCount).map { plan.text(choice: $0, tokens: step) }
        if request.kind == .responses {
            // Stored, as vLLM's `store` default keeps it: retrievable, and the context of a continuation.
            core.state.storeResponse(id: encoder.id, object: encoder.responseObject(status: "completed", text: texts[0], usage: usage, request: request),
                                     context: request.prompts[0].text + texts[0])
        }
        if request.stream {
            write(encoder.closing(usage: usage, text: texts[0], finishReason: plan.finishReason, request: request))
            endResponse(.init(rawValue: plan.finishReason) ?? .stop)
        } else {
            let body = encoder.completeResponse(texts: texts, finishReason: plan.finishReason, usage: usage, request: request)
            finish(.init(rawValue: plan.finishReason) ?? .stop)
            HTTPResponseWriter.respond(context, status: .ok, contentType: "application/json", body: body, keepAlive: keepAlive)
        }
    }

    /// An engine error after tokens were produced: an error event and `[DONE]` on a stream, a 500 otherwise.
    private func failMidway() {
        let error = SimulatorError.engineError("Simulated engine failure after \(step) tokens (x-sim-fault error-after).")
        if request.stream {
            write(encoder.midStreamError(error))
            endResponse(.error)
        } else {
            finish(.error)
            HTTPResponseWriter.respond(context, status: .internalServerError, contentType: "application/json",
                               body: error.json(legacy: core.configuration.legacyErrorShape), keepAlive: keepAlive)
        }
    }

    private func writeStreamHead() {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/event-stream; charset=utf-8")
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.flush()
    }

    private func write(_ event: String) {
        guard !event.isEmpty else { return }
        let buffer = context.channel.allocator.buffer(string: event)
        context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(buffer))), promise: nil)
    }

    /// Accounts first, then ends the response, so a pipelined next request never sees this run as current.
    private func endResponse(_ reason: FinishReason) {
        finish(reason)
        HTTPResponseWriter.end(context, keepAlive: keepAlive)
    }

    private func finish(_ reason: FinishReason) {
        guard phase == .running || phase == .abortedWhileQueued else { return }
        phase = .finished
        scheduled?.cancel()
        core.state.finish(reason, route: route, promptTokens: request.promptTokens, generatedTokens: generatedTokens)
        onFinished(self)
    }
}
