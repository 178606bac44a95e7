import NIOCore
import WardenNIOSupport
import NIOHTTP1
import Synchronization
import WardenJSON

/// What every connection of one simulator shares.
final class SimulatorCore: Sendable {
    let configuration: SimulatorConfiguration
    let state: SimulatorState
    /// Set on shutdown: new generation requests are refused, as vLLM does while it drains.
    let draining = Atomic<Bool>(false)
    /// Seconds since the epoch when the server started (the `created` of `/v1/models`).
    let startedAt: Int

    init(configuration: SimulatorConfiguration, startedAt: Int) {
        self.configuration = configuration
        self.state = SimulatorState(faults: configuration.faults, maxNumSeqs: configuration.maxNumSeqs)
        self.startedAt = startedAt
    }
}

/// One connection's HTTP/1.1 handler: reads a request, routes it, answers as vLLM would.
final class SimulatorHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Request bodies above this are refused with 413 (vLLM itself has no limit; this keeps the simulator safe).
    static let maxBodyBytes = 32 * 1024 * 1024

    private let core: SimulatorCore
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var bodyTooLarge = false
    private var run: GenerationRun?

    init(core: SimulatorCore) {
        self.core = core
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
            body.clear()
            bodyTooLarge = false
        case .body(var chunk):
            if body.readableBytes + chunk.readableBytes > Self.maxBodyBytes {
                bodyTooLarge = true
            } else {
                body.writeBuffer(&chunk)
            }
        case .end:
            guard let requestHead = head else { return }
            head = nil
            dispatch(context: context, head: requestHead)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        run?.clientWentAway()
        run = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func dispatch(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let keepAlive = head.isKeepAlive && core.configuration.keepAlive
        let path = String(head.uri.prefix { $0 != "?" })
        let method = head.method.rawValue
        let json = { (status: HTTPResponseStatus, body: String) in
            HTTPResponseWriter.respond(context, status: status, contentType: "application/json", body: body, keepAlive: keepAlive)
        }
        if bodyTooLarge {
            HTTPResponseWriter.respond(context, status: .payloadTooLarge, contentType: "application/json",
                               body: SimulatorError(status: 413, type: "Request Entity Too Large", message: "Request body too large").json(legacy: false),
                               keepAlive: false)
            return
        }
        if !path.hasPrefix("/sim/") {
            core.state.record(method: method, path: path, headers: head.headers, body: body)
        }
        let configuration = core.configuration
        if !configuration.apiKeys.isEmpty, Route.requiresKey(method: method, path: path),
           !isAuthorized(head.headers.first(name: "authorization"), keys: configuration.apiKeys) {
            json(.unauthorized, "{\"error\":\"Unauthorized\"}")
            return
        }

        switch Route.resolve(method: method, path: path) {
        case .chatCompletions:
            generate(context: context, head: head, kind: .chat, keepAlive: keepAlive)
        case .completions:
            generate(context: context, head: head, kind: .completion, keepAlive: keepAlive)
        case .batchChat:
            generate(context: context, head: head, kind: .chat, batch: true, keepAlive: keepAlive)
        case .responses:
            generate(context: context, head: head, kind: .responses, keepAlive: keepAlive)
        case .messages:
            generate(context: context, head: head, kind: .messages, keepAlive: keepAlive)
        case .pooling(let route):
            let (status, headers, answer) = PoolingRoutes.answer(route, body: body, core: core)
            HTTPResponseWriter.respond(context, status: status, contentType: headers.contentType, body: answer, keepAlive: keepAlive,
                                       extraHeaders: headers.extra)
        case .audio(let route):
            AudioRoutes.answer(route, head: head, body: body, core: core, context: context, keepAlive: keepAlive)
        case .invocations:
            // SageMaker: the body's shape picks the handler.
            let kind: GenerationRequest.Kind = (try? JSONValue.parse(body.readableBytesView))?["messages"] != nil ? .chat : .completion
            generate(context: context, head: head, kind: kind, keepAlive: keepAlive)
        case .health:
            let status: HTTPResponseStatus = core.state.faults.unhealthy ? .serviceUnavailable : .ok
            HTTPResponseWriter.respond(context, status: status, contentType: nil, body: "", keepAlive: keepAlive)
        case .notFound:
            json(.notFound, "{\"detail\":\"Not Found\"}")
        case .methodNotAllowed:
            json(.methodNotAllowed, "{\"detail\":\"Method Not Allowed\"}")
        case .metrics:
            HTTPResponseWriter.respond(context, status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8",
                               body: SimulatorReports.metrics(core.state.snapshot(), model: configuration.servedModelName,
                                                              maxNumSeqs: configuration.maxNumSeqs),
                               keepAlive: keepAlive)
        case .simStats:
            json(.ok, SimulatorReports.stats(core.state.snapshot()))
        case .simReset:
            core.state.reset()
            json(.ok, "{}")
        case .simFaults:
            switch SimulatorUtilityRoutes.faults(body: body, current: core.state.faults) {
            case .success(let faults):
                core.state.setFaults(faults)
                json(.ok, "{}")
            case .failure(let error):
                json(.badRequest, error.json(legacy: false))
            }
        case let route:
            let (status, text) = SimulatorUtilityRoutes.answer(route, body: body, core: core)
            json(status, text)
        }
    }

    private func generate(context: ChannelHandlerContext, head: HTTPRequestHead, kind: GenerationRequest.Kind, batch: Bool = false, keepAlive: Bool) {
        let configuration = core.configuration
        let fail = { (error: SimulatorError) in
            self.core.state.countFailure()
            HTTPResponseWriter.respond(context, status: HTTPResponseStatus(statusCode: error.status), contentType: "application/json",
                               body: error.json(legacy: configuration.legacyErrorShape), keepAlive: keepAlive)
        }
        if core.draining.load(ordering: .relaxed) {
            fail(SimulatorError(status: 503, type: "ServiceUnavailableError", message: "The server is shutting down.", param: nil))
            return
        }
        var overrides = RequestOverrides()
        if let header = head.headers.first(name: RequestOverrides.headerName) {
            switch RequestOverrides.parse(header) {
            case .success(let parsed): overrides = parsed
            case .failure(let error): return fail(error)
            }
        }
        let request: GenerationRequest
        do {
            let document = try JSONValue.parse(body.readableBytesView)
            let state = core.state
            request = try GenerationRequest.parse(document, kind: kind, configuration: configuration, batch: batch,
                                                  storedContext: { state.storedResponse($0)?.context })
        } catch let error as SimulatorError {
            return fail(error)
        } catch {
            return fail(.badRequest("JSON decode error: \(error)"))
        }
        let faults = core.state.faults
        let failPercent = overrides.failPercent ?? faults.failPercent
        if failPercent > 0, Int.random(in: 0..<100) < failPercent {
            return fail(.engineError("Simulated engine failure (fail-percent \(failPercent))."))
        }
        let id = core.state.nextRequestID()
        let plan = GenerationPlan(request: request, naturalLength: max(1, overrides.outputTokens ?? configuration.outputTokens))
        let encoder = ResponseEncoder(kind: kind, model: request.model, created: epochSeconds(), idNumber: id)
        let timing = GenerationRun.Timing(
            headDelay: .init(overrides.headDelay ?? faults.headDelay),
            timeToFirstToken: .init(overrides.timeToFirstToken ?? configuration.timeToFirstToken),
            interTokenLatency: .init(overrides.interTokenLatency ?? configuration.interTokenLatency),
            closeAfterTokens: overrides.closeAfterTokens ?? faults.closeAfterTokens,
            errorAfterTokens: overrides.errorAfterTokens ?? faults.errorAfterTokens)
        if request.background {
            // Queued and stored; the simulator does not run background work (the gateway refuses it by default).
            let object = encoder.responseObject(status: "queued", text: nil, usage: nil, request: request)
            core.state.storeResponse(id: encoder.id, object: object, context: request.prompts[0].text)
            HTTPResponseWriter.respond(context, status: .ok, contentType: "application/json", body: object, keepAlive: keepAlive)
            return
        }
        let generation = GenerationRun(id: id, route: "\(head.method.rawValue) \(String(head.uri.prefix { $0 != "?" }))", plan: plan, encoder: encoder, core: core, context: context, keepAlive: keepAlive,
                                       timing: timing) { [weak self] finished in
            if self?.run === finished { self?.run = nil }
        }
        run = generation
        generation.begin()
    }
}

