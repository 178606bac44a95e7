import NIOCore
import NIOHTTP1

/// One proxied request as a pure state machine, in the shape of async-http-client's request state machine:
/// events from the client and from vLLM in, actions out. ``ProxyExchange`` only carries the actions out, so every
/// way an exchange can end is decided here and settled through ``Settlement`` once, in ``finish(_:decision:)``.
struct ExchangeStateMachine {
    /// What the machine knows of the request.
    struct Request {
        var requestID: String
        var keepAlive: Bool
        var reservedTokens: Int
        /// The gateway asked vLLM for the stream's usage event; the client did not.
        var dropUsageEvent: Bool
        /// How this route reports usage.
        var shape: UsageShape = .openAI
        /// `/v1/models` is answered with only these models (empty: as vLLM sent it).
        var visibleModels: [String]
        var isModelList: Bool
    }

    /// An answer the gateway writes instead of vLLM's.
    enum Rewrite: Equatable {
        case error(GatewayError)
        case filterModels
    }

    /// Plain values only (no payload to retain): the state is copied by every event.
    enum State {
        case idle
        case connecting(retried: Bool)
        case awaitingHead(reused: Bool, retried: Bool)
        case relaying(Relay)
        case finished
    }

    struct Relay {
        var status: Int
        var isEventStream: Bool
        var upstreamKeepAlive: Bool
        /// Reading from vLLM is paused until the client drains what it was sent.
        var paused = false
    }

    enum Event {
        case start
        /// A connection to vLLM holds the request. `delivered`: its handshake is done, so the request is as good as
        /// sent; a connection still shaking hands holds it until ``requestDelivered``.
        case connected(reused: Bool, delivered: Bool = true)
        /// The handshake the request was queued behind completed: vLLM gets the request.
        case requestDelivered
        /// No connection to vLLM: refused, unreachable or timed out, before or (for a request queued behind the
        /// handshake) after the request was handed to the connection; either way vLLM never saw it.
        case connectFailed(String)
        case responseHead(UpstreamHead)
        case responseBody(ByteBuffer)
        case responseEnd
        /// vLLM's connection closed or failed before the response ended. `retryable`: it went away before sending a
        /// byte of this response (a kept-alive connection it had closed), not a malformed answer or a timeout, after
        /// which vLLM may be working on the request.
        case upstreamClosed(String, retryable: Bool = true)
        /// vLLM's bytes of one read were handed on; `clientWritable` says whether the client keeps up.
        case readComplete(clientWritable: Bool)
        case clientWritable
        case clientGone
        /// The client did not drain its buffer within the write timeout.
        case stallTimeout
        /// Drain time is up.
        case terminate
    }

    /// The outcome settled once per exchange.
    struct Outcome: Equatable {
        var status: Int
        var decision: String
        var charged: Int
        var usage: Usage?
        var upstreamStatus: Int?
        /// The Responses API id vLLM gave this response, when the route captures it.
        var responseID: String?
    }

    enum Action: Equatable {
        case acquireConnection(fresh: Bool)
        case sendRequest
        /// vLLM's head, with the gateway's changes applied by the caller (hop-by-hop, request id, limits).
        case writeHead(UpstreamHead)
        case writeBody(ByteBuffer)
        case flush
        case pauseUpstream
        case resumeUpstream
        case startStallTimer
        case cancelStallTimer
        /// Returns vLLM's connection to the pool.
        case releaseUpstream
        /// Closes vLLM's connection: vLLM aborts whatever it generates for this request.
        case closeUpstream
        /// Accounts, logs and counts the request; always before the last bytes go out.
        case finish(Outcome)
        /// A whole response the gateway writes itself.
        case respond(GatewayError, keepAlive: Bool)
        /// `/v1/models` filtered to what the key may see (from the buffered body).
        case respondModels(ByteBuffer)
        /// A terminal `data: {"error":…}` event and `data: [DONE]`.
        case writeStreamError(message: String, code: String)
        case endResponse(keepAlive: Bool)
        case closeClient

        /// Writes to, flushes or closes the client's connection other than with body bytes: a head held back to
        /// be joined by the body must go out before it.
        var overtakesHeldHead: Bool {
            switch self {
            case .flush, .respond, .respondModels, .writeStreamError, .endResponse, .closeClient, .writeHead: true
            case .writeBody, .acquireConnection, .sendRequest, .pauseUpstream, .resumeUpstream, .startStallTimer, .cancelStallTimer,
                 .releaseUpstream, .closeUpstream, .finish: false
            }
        }
    }

    let request: Request
    private(set) var state = State.idle
    private var meter = ResponseMeter(format: .json)
    private var sentUpstream = false
    private var receivedAnything = false
    private var responseComplete = false
    /// The answer the gateway writes instead of vLLM's, decided from vLLM's head.
    private var rewrite: Rewrite?
    private var rewriteBody = ByteBuffer()
    /// vLLM's body goes to the client as it comes (no rewrite). Asked per read: the tag alone, no copy of the rewrite.
    private var relaysBody: Bool { if case .none = rewrite { true } else { false } }
    /// vLLM's bytes of the current read, written to the client as one body part when the read completes (as nginx
    /// forwards what one read returned): one chunk per read instead of one per event when events arrive together.
    private var unsent: ByteBuffer?
    /// A rewritten answer (error text, model list) is small; more is not kept.
    static let rewriteLimit = 1 << 20

    init(request: Request) {
        self.request = request
    }

    var isFinished: Bool { if case .finished = state { true } else { false } }

    /// The actions for `event`, appended to `actions` in the order they are to be carried out. The caller owns the
    /// buffer and reuses it: an event relayed per read of a stream allocates nothing here.
    mutating func handle(_ event: Event, into actions: inout [Action]) {
        if case .finished = state { return }
        switch event {
        case .start:
            guard case .idle = state else { return }
            state = .connecting(retried: false)
            actions.append(.acquireConnection(fresh: false))
        case .connected(let reused, let delivered):
            guard case .connecting(let retried) = state else { return }
            state = .awaitingHead(reused: reused, retried: retried)
            sentUpstream = delivered
            actions.append(.sendRequest)
        case .requestDelivered:
            sentUpstream = true
        case .connectFailed(let reason):
            switch state {
            case .connecting:
                failBeforeHead(.upstreamUnavailable(reason), into: &actions)
            case .awaitingHead(reused: false, _):
                // A connection whose request was queued behind its handshake (``UpstreamPool``) and whose handshake
                // failed: the request never left, so nothing is charged, as for any connection vLLM refused.
                sentUpstream = false
                actions.append(.closeUpstream)
                failBeforeHead(.upstreamUnavailable(reason), into: &actions)
            default:
                return
            }
        case .responseHead(let head):
            guard case .awaitingHead = state else { return }
            receivedHead(head, into: &actions)
        case .upstreamClosed(let reason, let retryable):
            switch state {
            case .awaitingHead(let reused, let retried):
                actions.append(.closeUpstream)
                if reused, !retried, !receivedAnything, retryable {
                    // A kept-alive connection vLLM closed just before our request: one retry on a fresh one.
                    state = .connecting(retried: true)
                    actions.append(.acquireConnection(fresh: true))
                } else {
                    failBeforeHead(.upstreamUnavailable(reason), into: &actions)
                }
            case .relaying(let relay):
                upstreamBroke(relay, reason: reason, into: &actions)
            default:
                return
            }
        case .responseBody(let buffer):
            guard case .relaying = state else { return }
            receivedBody(buffer)
        case .responseEnd:
            guard case .relaying(let relay) = state else { return }
            responseEnded(relay, into: &actions)
        case .readComplete(let clientWritable):
            guard case .relaying(var relay) = state else { return }
            if relaysBody {
                takeUnsent(into: &actions)
                actions.append(.flush)
            }
            if !clientWritable, !relay.paused {
                relay.paused = true
                state = .relaying(relay)
                actions.append(.pauseUpstream)
                actions.append(.startStallTimer)
            }
        case .clientWritable:
            guard case .relaying(var relay) = state, relay.paused else { return }
            relay.paused = false
            state = .relaying(relay)
            actions.append(.cancelStallTimer)
            actions.append(.resumeUpstream)
        case .stallTimeout:
            // The client stopped reading: vLLM must not keep generating into a buffer nobody drains.
            guard case .relaying(let relay) = state, relay.paused else { return }
            actions.append(.closeUpstream)
            actions.append(finish(status: relay.status, decision: "client_stalled"))
            actions.append(.closeClient)
        case .clientGone:
            actions.append(.closeUpstream)
            actions.append(finish(status: 499, decision: "client_closed"))
        case .terminate:
            actions.append(.closeUpstream)
            guard case .relaying(let relay) = state else {
                failBeforeHead(.draining, keepAlive: false, into: &actions)
                return
            }
            actions.append(finish(status: relay.status, decision: "drained"))
            if relay.isEventStream, relaysBody {
                takeUnsent(into: &actions)
                actions.append(.writeStreamError(message: "The gateway is shutting down; the stream was ended before completion.", code: "shutting_down"))
                actions.append(.endResponse(keepAlive: false))
            } else {
                actions.append(.closeClient)
            }
        }
    }

    private mutating func receivedHead(_ head: UpstreamHead, into actions: inout [Action]) {
        receivedAnything = true
        let status = Int(head.status.code)
        let isEventStream = head.isEventStream
        if head.status == .unauthorized {
            rewrite = .error(.upstreamCredentials)
        } else if status >= 500, !isEventStream {
            // vLLM's own error texts have leaked heap addresses: clients get a generic message and the request id.
            rewrite = .error(.upstreamFailed(requestID: request.requestID, status: status))
        } else if request.isModelList, !request.visibleModels.isEmpty, head.status == .ok {
            rewrite = .filterModels
        }
        meter = ResponseMeter(format: isEventStream ? .eventStream(dropUsageEvent: request.dropUsageEvent) : .json, shape: request.shape)
        meter.readHead(metadata: head.metadata)
        state = .relaying(Relay(status: status, isEventStream: isEventStream, upstreamKeepAlive: head.isKeepAlive))
        if relaysBody { actions.append(.writeHead(head)) }
    }

    /// vLLM's bytes, metered, held until the read completes (or kept for the rewrite).
    private mutating func receivedBody(_ buffer: ByteBuffer) {
        if !relaysBody {
            if rewriteBody.readableBytes + buffer.readableBytes <= Self.rewriteLimit {
                var copy = buffer
                rewriteBody.writeBuffer(&copy)
            }
            return
        }
        var output = meter.consume(buffer) ?? buffer
        guard output.readableBytes > 0 else { return }
        if unsent == nil {
            unsent = output
        } else {
            unsent!.writeBuffer(&output)
        }
    }

    /// The bytes held for the current read, as a write.
    private mutating func takeUnsent(into actions: inout [Action]) {
        guard let bytes = unsent else { return }
        unsent = nil
        actions.append(.writeBody(bytes))
    }

    private mutating func responseEnded(_ relay: Relay, into actions: inout [Action]) {
        responseComplete = true
        actions.append(relay.upstreamKeepAlive ? .releaseUpstream : .closeUpstream)
        switch rewrite {
        case .error(let error):
            actions.append(finish(status: Int(error.status.code), decision: error.decision))
            actions.append(.respond(error, keepAlive: request.keepAlive))
        case .filterModels:
            actions.append(finish(status: 200, decision: "allowed"))
            actions.append(.respondModels(rewriteBody))
        case nil:
            takeUnsent(into: &actions)
            let rest = meter.flush()
            if !rest.isEmpty { actions.append(.writeBody(ByteBuffer(bytes: rest))) }
            actions.append(finish(status: relay.status, decision: meter.sawErrorEvent ? "upstream_error_event" : "allowed"))
            actions.append(.endResponse(keepAlive: request.keepAlive))
        }
    }

    private mutating func upstreamBroke(_ relay: Relay, reason: String, into actions: inout [Action]) {
        actions.append(.closeUpstream)
        if !relaysBody {
            let error = GatewayError.upstreamFailed(requestID: request.requestID, status: relay.status)
            actions.append(finish(status: Int(error.status.code), decision: error.decision))
            actions.append(.respond(error, keepAlive: request.keepAlive))
        } else if relay.isEventStream {
            actions.append(finish(status: relay.status, decision: "upstream_failed_midstream"))
            takeUnsent(into: &actions)
            actions.append(.writeStreamError(message: "The model server stopped mid-stream (\(reason)); request id \(request.requestID).", code: "upstream_error"))
            actions.append(.endResponse(keepAlive: request.keepAlive))
        } else {
            actions.append(finish(status: relay.status, decision: "upstream_failed_midstream"))
            actions.append(.closeClient)
        }
    }

    private mutating func failBeforeHead(_ error: GatewayError, keepAlive: Bool? = nil, into actions: inout [Action]) {
        actions.append(finish(status: Int(error.status.code), decision: error.decision))
        actions.append(.respond(error, keepAlive: keepAlive ?? request.keepAlive))
    }

    /// The one place an exchange is settled; `state` is final afterwards.
    private mutating func finish(status: Int, decision: String) -> Action {
        var upstreamStatus: Int?
        if case .relaying(let relay) = state { upstreamStatus = relay.status }
        state = .finished
        let facts = Settlement.Facts(sentUpstream: sentUpstream, upstreamStatus: upstreamStatus, responseComplete: responseComplete,
                                     finalUsage: meter.final, runningUsage: meter.running)
        return .finish(Outcome(status: status, decision: decision, charged: Settlement.charge(reserved: request.reservedTokens, facts),
                               usage: meter.final ?? meter.running, upstreamStatus: upstreamStatus, responseID: meter.responseID))
    }
}
