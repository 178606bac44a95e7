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
        var rewrite: Rewrite?
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
    }

    let request: Request
    private(set) var state = State.idle
    private var meter = ResponseMeter(format: .json)
    private var sentUpstream = false
    private var receivedAnything = false
    private var responseComplete = false
    private var rewriteBody = ByteBuffer()
    /// vLLM's bytes of the current read, written to the client as one body part when the read completes (as nginx
    /// forwards what one read returned): one chunk per read instead of one per event when events arrive together.
    private var unsent: ByteBuffer?
    /// A rewritten answer (error text, model list) is small; more is not kept.
    static let rewriteLimit = 1 << 20

    init(request: Request) {
        self.request = request
    }

    var isFinished: Bool { if case .finished = state { true } else { false } }

    mutating func handle(_ event: Event) -> [Action] {
        switch (state, event) {
        case (.finished, _):
            return []
        case (.idle, .start):
            state = .connecting(retried: false)
            return [.acquireConnection(fresh: false)]
        case (.connecting(let retried), .connected(let reused, let delivered)):
            state = .awaitingHead(reused: reused, retried: retried)
            sentUpstream = delivered
            return [.sendRequest]
        case (_, .requestDelivered):
            sentUpstream = true
            return []
        case (.connecting, .connectFailed(let reason)):
            return failBeforeHead(.upstreamUnavailable(reason))
        case (.awaitingHead(reused: false, _), .connectFailed(let reason)):
            // A connection whose request was queued behind its handshake (``UpstreamPool``) and whose handshake
            // failed: the request never left, so nothing is charged, as for any connection vLLM refused.
            sentUpstream = false
            return [.closeUpstream] + failBeforeHead(.upstreamUnavailable(reason))
        case (.awaitingHead, .responseHead(let head)):
            return receivedHead(head)
        case (.awaitingHead(let reused, let retried), .upstreamClosed(let reason, let retryable)):
            if reused, !retried, !receivedAnything, retryable {
                // A kept-alive connection vLLM closed just before our request: one retry on a fresh one.
                state = .connecting(retried: true)
                return [.closeUpstream, .acquireConnection(fresh: true)]
            }
            return [.closeUpstream] + failBeforeHead(.upstreamUnavailable(reason))
        case (.relaying(let relay), .responseBody(let buffer)):
            return receivedBody(buffer, relay)
        case (.relaying(let relay), .responseEnd):
            return responseEnded(relay)
        case (.relaying(let relay), .readComplete(let clientWritable)):
            var actions: [Action] = relay.rewrite == nil ? takeUnsent() + [.flush] : []
            if !clientWritable, !relay.paused {
                var paused = relay
                paused.paused = true
                state = .relaying(paused)
                actions += [.pauseUpstream, .startStallTimer]
            }
            return actions
        case (.relaying(var relay), .clientWritable) where relay.paused:
            relay.paused = false
            state = .relaying(relay)
            return [.cancelStallTimer, .resumeUpstream]
        case (.relaying(let relay), .upstreamClosed(let reason, _)):
            return upstreamBroke(relay, reason: reason)
        case (.relaying(let relay), .stallTimeout) where relay.paused:
            // The client stopped reading: vLLM must not keep generating into a buffer nobody drains.
            return [.closeUpstream, finish(status: relay.status, decision: "client_stalled"), .closeClient]
        case (_, .clientGone):
            return [.closeUpstream, finish(status: 499, decision: "client_closed")]
        case (.relaying(let relay), .terminate) where relay.isEventStream && relay.rewrite == nil:
            return [.closeUpstream, finish(status: relay.status, decision: "drained")] + takeUnsent() + [
                    .writeStreamError(message: "The gateway is shutting down; the stream was ended before completion.", code: "shutting_down"),
                    .endResponse(keepAlive: false)]
        case (.relaying(let relay), .terminate):
            return [.closeUpstream, finish(status: relay.status, decision: "drained"), .closeClient]
        case (_, .terminate):
            return [.closeUpstream] + failBeforeHead(.draining, keepAlive: false)
        default:
            // Events that do not apply in this state (a late read-complete, writability while not paused).
            return []
        }
    }

    private mutating func receivedHead(_ head: UpstreamHead) -> [Action] {
        receivedAnything = true
        let status = Int(head.status.code)
        let isEventStream = head.isEventStream
        var rewrite: Rewrite?
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
        state = .relaying(Relay(status: status, isEventStream: isEventStream, upstreamKeepAlive: head.isKeepAlive, rewrite: rewrite))
        return rewrite == nil ? [.writeHead(head)] : []
    }

    private mutating func receivedBody(_ buffer: ByteBuffer, _ relay: Relay) -> [Action] {
        if relay.rewrite != nil {
            if rewriteBody.readableBytes + buffer.readableBytes <= Self.rewriteLimit {
                var copy = buffer
                rewriteBody.writeBuffer(&copy)
            }
            return []
        }
        var output = meter.consume(buffer) ?? buffer
        guard output.readableBytes > 0 else { return [] }
        if unsent == nil {
            unsent = output
        } else {
            unsent!.writeBuffer(&output)
        }
        return []
    }

    /// The bytes held for the current read, as a write.
    private mutating func takeUnsent() -> [Action] {
        guard let bytes = unsent else { return [] }
        unsent = nil
        return [.writeBody(bytes)]
    }

    private mutating func responseEnded(_ relay: Relay) -> [Action] {
        responseComplete = true
        var actions: [Action] = [relay.upstreamKeepAlive ? .releaseUpstream : .closeUpstream]
        switch relay.rewrite {
        case .error(let error):
            actions += [finish(status: Int(error.status.code), decision: error.decision), .respond(error, keepAlive: request.keepAlive)]
        case .filterModels:
            actions += [finish(status: 200, decision: "allowed"), .respondModels(rewriteBody)]
        case nil:
            actions += takeUnsent()
            let rest = meter.flush()
            if !rest.isEmpty { actions.append(.writeBody(ByteBuffer(bytes: rest))) }
            actions += [finish(status: relay.status, decision: meter.sawErrorEvent ? "upstream_error_event" : "allowed"),
                        .endResponse(keepAlive: request.keepAlive)]
        }
        return actions
    }

    private mutating func upstreamBroke(_ relay: Relay, reason: String) -> [Action] {
        if relay.rewrite != nil {
            let error = GatewayError.upstreamFailed(requestID: request.requestID, status: relay.status)
            return [.closeUpstream, finish(status: Int(error.status.code), decision: error.decision), .respond(error, keepAlive: request.keepAlive)]
        }
        if relay.isEventStream {
            return [.closeUpstream, finish(status: relay.status, decision: "upstream_failed_midstream")] + takeUnsent() + [
                    .writeStreamError(message: "The model server stopped mid-stream (\(reason)); request id \(request.requestID).", code: "upstream_error"),
                    .endResponse(keepAlive: request.keepAlive)]
        }
        return [.closeUpstream, finish(status: relay.status, decision: "upstream_failed_midstream"), .closeClient]
    }

    private mutating func failBeforeHead(_ error: GatewayError, keepAlive: Bool? = nil) -> [Action] {
        [finish(status: Int(error.status.code), decision: error.decision), .respond(error, keepAlive: keepAlive ?? request.keepAlive)]
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
