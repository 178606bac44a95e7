import NIOCore
import NIOHTTP1
import WardenConfig
import WardenJSON

/// Admission as one function: a request's head and body, a snapshot of the policy, the limits (with their clock)
/// and the time → a refusal the gateway answers itself, or the request to forward with its reservation. The checks
/// run in the documented order; the first that refuses decides. Nothing here writes to a channel.
enum Admission {
    /// What admission reads besides the request.
    struct Context {
        var configuration: GatewayConfiguration
        var policy: GatewayPolicy
        var limits: GatewayLimits
        var draining: Bool
        /// The TCP peer.
        var peer: IPAddress?
        /// Seconds since the epoch, for key expiry.
        var epochSeconds: Int64
    }

    /// Who asked, as far as the head tells.
    struct Identity {
        /// The gateway's own id, sent to vLLM.
        var requestID: String
        /// The client's `X-Request-Id`, when it sent a plain one (echoed back and logged, never sent to vLLM).
        var clientRequestID: String?
        /// The client's address: the peer, or from `X-Forwarded-For` when the peer is a trusted proxy.
        var client: String
        var clientAddress: IPAddress?
    }

    struct Rejection: Error {
        var error: GatewayError
        /// The allow-listed route, or `other`, for metrics.
        var route: String
        var path: String
        var key: String?
        /// The rest of the connection cannot be trusted (framing problems) or the gateway is draining.
        var closeConnection: Bool
        /// This refusal started a ban of that length.
        var banStarted: Duration?
    }

    struct Forward {
        var target: RequestTarget
        var key: KeyRecord
        var inference: InferenceRequest?
        var body: ByteBuffer
        var admission: GatewayLimits.Admission
        var responseHeaders: [(String, String)]
        var dropUsageEvent: Bool
    }

    enum Decision {
        case reject(Rejection)
        case forward(Forward)
    }

    /// `GET /health` and `GET`/`POST /ping` are answered by the gateway itself, without a key and never forwarded:
    /// load balancers, Kubernetes and vLLM clients (guidellm, LiteLLM) probe them as they probe vLLM.
    static func isHealthProbe(_ head: HTTPRequestHead) -> Bool {
        let path = head.uri.prefix { $0 != "?" }
        switch (path, head.method) {
        case ("/health", .GET), ("/health", .HEAD), ("/ping", .GET), ("/ping", .POST), ("/ping", .HEAD): return true
        default: return false
        }
    }

    static func identify(_ head: HTTPRequestHead, context: Context) -> Identity {
        let forwardedFor = head.headers["x-forwarded-for"]
        let address = HeaderPolicy.clientAddress(peer: context.peer, forwardedFor: forwardedFor.isEmpty ? nil : forwardedFor.joined(separator: ","),
                                                 trusted: context.configuration.trustedProxies)
        return Identity(requestID: RequestIDs.next(), clientRequestID: HeaderPolicy.clientRequestID(from: head.headers),
                        client: address?.description ?? "unknown", clientAddress: address)
    }

    /// The checks that need only the head (framing, target, drain, ban, key, allow-list): also what decides
    /// whether an `Expect: 100-continue` request may send its body.
    static func checkHead(_ head: HTTPRequestHead, identity: Identity, context: Context) -> Result<(RequestTarget, KeyRecord), Rejection> {
        let rawPath = String(head.uri.prefix { $0 != "?" })
        func reject(_ error: GatewayError, _ path: String, key: String? = nil, close: Bool = false, ban: Duration? = nil) -> Result<(RequestTarget, KeyRecord), Rejection> {
            .failure(Rejection(error: error, route: context.policy.allowList.route(method: head.method.rawValue, path: path), path: path, key: key,
                               closeConnection: close || error.status == .payloadTooLarge || error.code == "ambiguous_length", banStarted: ban))
        }
        if let violation = headerViolation(head, context.configuration) { return reject(violation, rawPath) }
        let target: RequestTarget
        do {
            target = try RequestTarget(head.uri)
        } catch {
            return reject(.badRequest("Ambiguous request target: \(error.rawValue).", code: "invalid_target"), rawPath)
        }
        if context.draining { return reject(.draining, target.path, close: true) }
        // Bans are checked before the key: a banned address costs one hash lookup.
        if let address = identity.clientAddress, let remaining = context.limits.banRemaining(address) {
            return reject(.banned(retryAfter: remaining), target.path)
        }
        let key: KeyRecord
        switch context.policy.keys.authenticate(authorization: head.headers.first(name: "authorization"), now: context.epochSeconds) {
        case .success(let record): key = record
        case .failure(let failure):
            let ban = failure == .missing ? nil : identity.clientAddress.flatMap { context.limits.recordAuthFailure($0) }
            return reject(.unauthorized(failure), target.path, ban: ban)
        }
        guard context.policy.allowList.allows(method: head.method.rawValue, path: target.path) else {
            return reject(.notFound(head.method.rawValue, target.path), target.path, key: key.publicID)
        }
        return .success((target, key))
    }

    /// Every check, then the limits: the request to forward (body amended) or the refusal.
    static func decide(_ head: HTTPRequestHead, body: ByteBuffer, bodyViolation: GatewayError?, identity: Identity,
                       context: Context) -> Decision {
        let (target, key): (RequestTarget, KeyRecord)
        switch checkHead(head, identity: identity, context: context) {
        case .failure(let rejection): return .reject(rejection)
        case .success(let checked): (target, key) = checked
        }
        let route = context.policy.allowList.route(method: head.method.rawValue, path: target.path)
        func reject(_ error: GatewayError) -> Decision {
            .reject(Rejection(error: error, route: route, path: target.path, key: key.publicID,
                              closeConnection: error.status == .payloadTooLarge, banStarted: nil))
        }
        if let bodyViolation { return reject(bodyViolation) }
        let configuration = context.configuration
        let defaults = context.limits.defaults
        var inference: InferenceRequest?
        if head.method == .POST, InferenceRequest.jsonEndpoints.contains(target.path) {
            do {
                let parsed = try InferenceRequest.parse(body.readableBytesView, path: target.path, servedModel: configuration.servedModelName,
                                                        defaultMaxTokens: defaults.defaultMaxTokens)
                guard key.allows(model: parsed.model) else { return reject(.modelNotAllowed(parsed.model)) }
                inference = parsed
            } catch {
                return reject(error)
            }
        }
        let reservation = inference?.budget.worstCase ?? 1
        let admission: GatewayLimits.Admission
        switch context.limits.admit(key: key, model: inference?.model ?? configuration.servedModelName, reserve: reservation) {
        case .success(let admitted): admission = admitted
        case .failure(let error): return reject(error)
        }
        var forwarded = body
        var responseHeaders = admission.headers
        var dropUsageEvent = false
        if let inference, defaults.enabled {
            var amended = inference.body
            if let cap = inference.budget.injectedCap {
                amended = amended.setting("max_tokens", to: .number(String(cap)))
                responseHeaders.append(("x-warden-max-tokens", String(cap)))
            }
            if inference.stream, !inference.clientIncludesUsage {
                // vLLM's final usage event is exact; the client, which did not ask for it, never sees it. Continuous
                // usage stays off, so no other event changes.
                amended = amended.setting("stream_options", to: .object([("include_usage", .bool(true)), ("continuous_usage_stats", .bool(false))]))
                dropUsageEvent = true
            }
            if inference.budget.injectedCap != nil || dropUsageEvent {
                forwarded = ByteBuffer(string: amended.serialized)
            }
        }
        return .forward(Forward(target: target, key: key, inference: inference, body: forwarded, admission: admission,
                                responseHeaders: responseHeaders, dropUsageEvent: dropUsageEvent))
    }

    /// Framing and size rules of the head: what NIO's parser lets through but the gateway does not.
    static func headerViolation(_ head: HTTPRequestHead, _ configuration: GatewayConfiguration) -> GatewayError? {
        let headers = head.headers
        if headers.count > configuration.maxHeaderFields
            || headers.reduce(head.uri.utf8.count, { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }) > configuration.maxHeaderBytes {
            return .headersTooLarge
        }
        let lengths = headers["content-length"]
        if !lengths.isEmpty && !headers["transfer-encoding"].isEmpty {
            return .badRequest("Content-Length and Transfer-Encoding together are ambiguous.", code: "ambiguous_length")
        }
        if lengths.count > 1 || lengths.first?.utf8.contains(UInt8(ascii: ",")) == true,
           Set(lengths.flatMap { $0.split(separator: ",").map { String($0.filter { $0 != " " && $0 != "\t" }) } }).count > 1 {
            return .badRequest("Conflicting Content-Length values.", code: "ambiguous_length")
        }
        let hosts = headers["host"]
        if hosts.count > 1 { return .badRequest("More than one Host header.", code: "ambiguous_host") }
        if hosts.isEmpty, head.version.major == 1, head.version.minor >= 1 {
            return .badRequest("HTTP/1.1 requests must carry a Host header.", code: "missing_host")
        }
        if let expect = headers.first(name: "expect"), expect.lowercased() != "100-continue" {
            return GatewayError(status: .expectationFailed, type: "invalid_request_error", code: "unsupported_expectation",
                                message: "Only `Expect: 100-continue` is supported.", decision: "rejected:bad_request")
        }
        return nil
    }
}
