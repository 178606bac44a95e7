import NIOCore
import NIOHTTP1
import WardenConfig
import WardenJSON

/// Admission as one function: a request's head and body, a snapshot of the policy, the limits (with their clock)
/// and the time → a refusal the gateway answers itself, or the request to forward with its reservation. The checks
/// run in the documented order; the first that refuses decides. Nothing here writes to a channel.
enum Admission {
    /// What every admission on one gateway reads and none changes, held by reference: a ``Context`` is built per
    /// request, and copying the whole configuration into it retained every one of its strings and arrays.
    final class Shared: Sendable {
        let configuration: GatewayConfiguration
        let limits: GatewayLimits
        /// The Responses API ids issued through this gateway, per key.
        let responses: ResponseRegistry

        init(configuration: GatewayConfiguration, limits: GatewayLimits, responses: ResponseRegistry) {
            self.configuration = configuration
            self.limits = limits
            self.responses = responses
        }
    }

    /// What admission reads besides the request.
    struct Context {
        var shared: Shared
        var policy: GatewayPolicy
        var draining: Bool
        /// The TCP peer.
        var peer: IPAddress?
        /// `peer` as the access log writes it (formatted once per connection).
        var peerText: String? = nil
        /// Seconds since the epoch, for key expiry.
        var epochSeconds: Int64
        /// This connection's last successful authentication.
        var recentKey: RecentKey?

        var configuration: GatewayConfiguration { shared.configuration }
        var limits: GatewayLimits { shared.limits }
        var responses: ResponseRegistry { shared.responses }
    }

    /// A connection's TCP peer and its text.
    struct Peer {
        var address: IPAddress?
        var text: String

        init(_ address: IPAddress?) {
            self.address = address
            text = address?.description ?? "unknown"
        }
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

    /// Held by reference: the exchange keeps it for the length of the response, and a struct of this many strings,
    /// arrays and buffers was copied (each retained) and destroyed on its way out of the decision.
    final class Forward {
        let target: RequestTarget
        let route: AllowedRoute
        /// How vLLM's answer reports usage on this route.
        let shape: UsageShape
        let key: KeyRecord
        /// The body's model, for the access log (the parsed body itself is not kept for the length of a stream).
        let model: String?
        let body: ByteBuffer
        let admission: GatewayLimits.Admission
        let responseHeaders: [(String, String)]
        let dropUsageEvent: Bool
        /// What the connection may reuse for its next request.
        let authenticated: RecentKey?

        init(target: RequestTarget, route: AllowedRoute, shape: UsageShape, key: KeyRecord, model: String?, body: ByteBuffer,
             admission: GatewayLimits.Admission, responseHeaders: [(String, String)], dropUsageEvent: Bool, authenticated: RecentKey?) {
            self.target = target
            self.route = route
            self.shape = shape
            self.key = key
            self.model = model
            self.body = body
            self.admission = admission
            self.responseHeaders = responseHeaders
            self.dropUsageEvent = dropUsageEvent
            self.authenticated = authenticated
        }
    }

    enum Decision {
        case reject(Rejection)
        case forward(Forward)
    }

    /// `GET /health` and `GET`/`POST /ping` are answered by the gateway itself, without a key and never forwarded:
    /// load balancers, Kubernetes and vLLM clients (guidellm, LiteLLM) probe them as they probe vLLM.
    static func isHealthProbe(_ head: ClientHead) -> Bool {
        // Compared as bytes, lengths first: this runs before every request.
        var uri = head.uri
        return uri.withUTF8 { bytes in
            let path = UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[..<(bytes.firstIndex(of: UInt8(ascii: "?")) ?? bytes.count)]))
            switch head.method {
            case .GET, .HEAD: return FieldSyntax.bytes(path, are: "/health") || FieldSyntax.bytes(path, are: "/ping")
            case .POST: return FieldSyntax.bytes(path, are: "/ping")
            default: return false
            }
        }
    }

    static func identify(_ head: ClientHead, context: Context) -> Identity {
        let client = HeaderPolicy.clientAddress(peer: context.peer, forwardedFor: Self.forwardedFor(head),
                                                trusted: context.configuration.trustedProxies)
        let text = client == context.peer ? context.peerText ?? client?.description : client?.description
        return Identity(requestID: RequestIDs.next(), clientRequestID: HeaderPolicy.clientRequestID(head.requestIDField),
                        client: text ?? "unknown", clientAddress: client)
    }

    /// Every `X-Forwarded-For` line, joined (a proxy may append its own line).
    private static func forwardedFor(_ head: ClientHead) -> String? {
        let lines = head.values("x-forwarded-for")
        return lines.isEmpty ? nil : lines.joined(separator: ",")
    }

    /// The checks that need only the head (framing, target, drain, ban, key, allow-list): also what decides
    /// whether an `Expect: 100-continue` request may send its body.
    static func checkHead(_ head: ClientHead, identity: Identity, context: Context) -> Result<(RequestTarget, KeyRecord, AllowedRoute), Rejection> {
        // Only refusals before the target is parsed need the raw path: not computed for requests that pass.
        var rawPath: String {
            let uri = head.uri
            return String(uri[..<(uri.utf8.firstIndex(of: UInt8(ascii: "?")) ?? uri.utf8.endIndex)])
        }
        func reject(_ error: GatewayError, _ path: String, key: String? = nil, close: Bool = false, ban: Duration? = nil) -> Result<(RequestTarget, KeyRecord, AllowedRoute), Rejection> {
            .failure(Rejection(error: error, route: context.policy.allowList.route(method: head.method.rawValue, path: path), path: path, key: key,
                               closeConnection: close || error.status == .payloadTooLarge, banStarted: ban))
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
        switch context.policy.keys.authenticate(authorization: head.authorization, now: context.epochSeconds,
                                                recent: context.recentKey) {
        case .success(let record): key = record
        case .failure(let failure):
            let ban = failure == .missing ? nil : identity.clientAddress.flatMap { context.limits.recordAuthFailure($0) }
            return reject(.unauthorized(failure), target.path, ban: ban)
        }
        guard let route = context.policy.allowList.match(method: head.method.rawValue, path: target.path) else {
            return reject(.notFound(head.method.rawValue, target.path), target.path, key: key.publicID)
        }
        // A stored response is reachable only by the key that created it (vLLM's store is shared by every caller).
        if route.template.hasParameters, route.template.path.hasPrefix("/v1/responses/") {
            let id = target.path.split(separator: "/")[2]
            if context.responses.lookup(String(id), key: key.publicID) == nil {
                return reject(.unknownResponse(String(id)), target.path, key: key.publicID)
            }
        }
        return .success((target, key, route))
    }

    /// Every check, then the limits: the request to forward (body amended) or the refusal.
    static func decide(_ head: ClientHead, body: ByteBuffer, bodyViolation: GatewayError?, identity: Identity,
                       context: Context) -> Decision {
        let (target, key, route): (RequestTarget, KeyRecord, AllowedRoute)
        switch checkHead(head, identity: identity, context: context) {
        case .failure(let rejection): return .reject(rejection)
        case .success(let checked): (target, key, route) = checked
        }
        func reject(_ error: GatewayError) -> Decision {
            .reject(Rejection(error: error, route: route.label, path: target.path, key: key.publicID,
                              closeConnection: error.status == .payloadTooLarge, banStarted: nil))
        }
        if let bodyViolation { return reject(bodyViolation) }
        let metered: Metered
        do {
            metered = try meter(head, body: body, route: route, key: key, context: context)
        } catch {
            return reject(error)
        }
        if let model = metered.model, model.utf8.count > maxModelNameBytes, model != context.configuration.servedModelName {
            // Logged with every request and echoed in refusals: a 4 MiB "model" must not become a 4 MiB log line.
            return reject(.badRequest("`model` is \(model.utf8.count) bytes long; model names are at most \(maxModelNameBytes) bytes.",
                                      code: "invalid_value", param: "model"))
        }
        if let model = metered.model, !key.allows(model: model) { return reject(.modelNotAllowed(model)) }
        let admission: GatewayLimits.Admission
        switch context.limits.admit(key: key, model: metered.model ?? context.configuration.servedModelName, reserve: metered.reservation) {
        case .success(let admitted): admission = admitted
        case .failure(let error): return reject(error)
        }
        var forwarded = body
        var responseHeaders: [(String, String)] = []
        var dropUsageEvent = false
        if let inference = metered.inference, context.limits.defaults.enabled {
            var injected: [(String, JSONValue)] = []
            if let cap = inference.budget.injectedCap {
                injected.append((inference.capField, .number(String(cap))))
                responseHeaders.append(("x-warden-max-tokens", String(cap)))
            }
            if route.meter == .chat || route.meter == .completions, inference.stream, !inference.clientIncludesUsage {
                // vLLM's final usage event is exact; the client, which did not ask for it, never sees it. Continuous
                // usage stays off, so no other event changes.
                injected.append(("stream_options", .object([("include_usage", .bool(true)), ("continuous_usage_stats", .bool(false))])))
                dropUsageEvent = true
            }
            if !injected.isEmpty { forwarded = setting(injected, in: body, parsed: inference.body) }
        }
        // The connection's last authentication, when this request reused it; a new one otherwise.
        let generation = context.policy.keys.generation
        let authenticated = head.authorization.map { authorization in
            context.recentKey.flatMap { $0.matches(authorization, generation: generation) ? $0 : nil }
                ?? RecentKey(authorization: authorization, generation: generation, record: key)
        }
        return .forward(Forward(target: target, route: route, shape: metered.shape, key: key, model: metered.model, body: forwarded,
                                admission: admission, responseHeaders: responseHeaders, dropUsageEvent: dropUsageEvent,
                                authenticated: authenticated))
    }

    /// The client's body with `members` set in its top-level object. Members the client did not send are written
    /// at the front of the object and the client's bytes follow untouched: no re-serialization of the whole request
    /// (every new stream without usage options or a cap paid for one), and vLLM gets what the client wrote. A member
    /// the client did send (a `null` cap, `stream_options` without usage) is replaced in the parsed document, which
    /// is then serialized: the request never carries a name twice.
    static func setting(_ members: [(String, JSONValue)], in body: ByteBuffer, parsed: JSONValue) -> ByteBuffer {
        let view = body.readableBytesView
        guard case .object(let existing) = parsed, members.allSatisfy({ parsed[$0.0] == nil }),
              let brace = view.firstIndex(of: UInt8(ascii: "{")) else {
            return ByteBuffer(string: members.reduce(parsed) { $0.setting($1.0, to: $1.1) }.serialized)
        }
        var spliced = ByteBuffer()
        spliced.reserveCapacity(body.readableBytes + 96)
        spliced.writeBytes(view[...brace])
        for (index, (name, value)) in members.enumerated() {
            if index > 0 { spliced.writeStaticString(",") }
            spliced.writeString(JSONValue.string(name).serialized)
            spliced.writeStaticString(":")
            spliced.writeString(value.serialized)
        }
        if !existing.isEmpty { spliced.writeStaticString(",") }
        spliced.writeBytes(view[view.index(after: brace)...])
        return spliced
    }

    /// The longest `model` a request may name (the served name itself may be longer: a model path).
    static let maxModelNameBytes = 1024

    /// What the route's meter reads from a request.
    struct Metered {
        var inference: InferenceRequest?
        var model: String?
        var reservation: Int
        var shape: UsageShape
    }

    /// Reads the request with its route's meter: the reservation, the usage shape to settle with, the model.
    static func meter(_ head: ClientHead, body: ByteBuffer, route: AllowedRoute, key: KeyRecord, context: Context) throws(GatewayError) -> Metered {
        let served = context.configuration.servedModelName
        guard let meter = route.meter else {
            // An explicit cost: its usage when vLLM reports one in OpenAI's shape, else the cost.
            return Metered(inference: nil, model: nil, reservation: route.cost ?? 0, shape: .openAI)
        }
        switch meter {
        case .requestOnly:
            return Metered(inference: nil, model: nil, reservation: 0, shape: .openAI)
        case .audio:
            let audio = try AudioRequest.parse(body.readableBytesView, contentType: head.first("content-type"))
            let rate = context.policy.metering.audioTokensPerSecond ?? 0
            return Metered(inference: nil, model: audio.model ?? served, reservation: audio.seconds.saturatingMultiplied(by: rate),
                           shape: .audio(tokensPerSecond: rate))
        default:
            guard head.method == .POST else { return Metered(inference: nil, model: nil, reservation: 0, shape: .openAI) }
            var parsed = try InferenceRequest.parse(body.readableBytesView, meter: meter, servedModel: served,
                                                    defaultMaxTokens: context.limits.defaults.defaultMaxTokens,
                                                    contextLength: context.configuration.maxModelLength)
            if parsed.background, !context.policy.metering.allowBackgroundResponses {
                throw .badRequest("`background: true` is refused: vLLM would keep generating after this request returns, where the gateway cannot meter it (the operator may allow it with gateway.allow_background_responses).",
                                  code: "background_not_allowed", param: "background")
            }
            if let previous = parsed.previousResponseID {
                guard let entry = context.responses.lookup(previous, key: key.publicID) else { throw .unknownResponse(previous) }
                parsed.budget.promptTokens = parsed.budget.promptTokens.saturatingAdded(entry.contextTokens)
            }
            var reservation = parsed.budget.worstCase
            var shape = UsageShape.openAI
            switch meter {
            case .responses: shape = .responses
            case .messages: shape = .messages
            case .pooling where route.template.path == "/v2/embed":
                shape = .cohereEmbed
            case .pooling where parsed.encoding == .bytesOnly:
                // No usage comes back: the bound is what the key pays.
                reservation = parsed.budget.promptTokens
            default: break
            }
            return Metered(inference: parsed, model: parsed.model, reservation: reservation, shape: shape)
        }
    }

    /// The rules of the head that are the gateway's own, beyond HTTP's (which ``ClientHead`` holds to): its
    /// size, one `Host` (required from HTTP/1.1 clients), and no expectation but `100-continue`.
    static func headerViolation(_ head: ClientHead, _ configuration: GatewayConfiguration) -> GatewayError? {
        if head.fieldCount > configuration.maxHeaderFields || head.measuredSize > configuration.maxHeaderBytes {
            return .headersTooLarge
        }
        if head.hostCount > 1 { return .badRequest("More than one Host header.", code: "ambiguous_host") }
        if head.hostCount == 0, head.version == .http1_1 {
            return .badRequest("HTTP/1.1 requests must carry a Host header.", code: "missing_host")
        }
        if let expectation = head.expectation, expectation.lowercased() != "100-continue" {
            return GatewayError(status: .expectationFailed, type: "invalid_request_error", code: "unsupported_expectation",
                                message: "Only `Expect: 100-continue` is supported.", decision: "rejected:bad_request")
        }
        return nil
    }
}
