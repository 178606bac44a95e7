/// The endpoints the simulator serves, as vLLM's API server exposes them.
enum Route: Equatable {
    case models, chatCompletions, completions, tokenize, detokenize
    case batchChat, responses, messages, countTokens
    /// `GET /v1/responses/{id}`, `POST /v1/responses/{id}/cancel`.
    case storedResponse(String), cancelResponse(String)
    /// Embeddings and the other pooling routes, by path.
    case pooling(String)
    case audio(String)
    /// `/v1/chat/completions/render`, `/v1/completions/render`: the prompt vLLM would run, no generation.
    case render(String)
    case health, metrics, version, load
    /// SageMaker's entry point: the same inference as `/v1`, never authenticated.
    case invocations
    /// Control and auxiliary routes a gateway must never forward; answered like vLLM in dev mode.
    case control(String)
    case simStats, simReset, simFaults
    case notFound, methodNotAllowed

    private static let table: [String: [String: Route]] = {
        var table: [String: [String: Route]] = [
            "/v1/models": ["GET": .models],
            "/v1/chat/completions": ["POST": .chatCompletions],
            "/v1/completions": ["POST": .completions],
            "/v1/chat/completions/batch": ["POST": .batchChat],
            "/v1/chat/completions/render": ["POST": .render("/v1/chat/completions/render")],
            "/v1/completions/render": ["POST": .render("/v1/completions/render")],
            "/v1/responses": ["POST": .responses],
            "/v1/messages": ["POST": .messages],
            "/v1/messages/count_tokens": ["POST": .countTokens],
            "/v1/audio/transcriptions": ["POST": .audio("/v1/audio/transcriptions")],
            "/v1/audio/translations": ["POST": .audio("/v1/audio/translations")],
            "/tokenize": ["POST": .tokenize],
            "/detokenize": ["POST": .detokenize],
            "/health": ["GET": .health],
            "/ping": ["GET": .health, "POST": .health],
            "/metrics": ["GET": .metrics],
            "/version": ["GET": .version],
            "/load": ["GET": .load],
            "/invocations": ["POST": .invocations],
            "/sim/stats": ["GET": .simStats],
            "/sim/reset": ["POST": .simReset],
            "/sim/faults": ["POST": .simFaults],
        ]
        let controlPosts = ["/pause", "/resume", "/sleep", "/wake_up", "/collective_rpc", "/v1/load_lora_adapter",
                            "/v1/unload_lora_adapter", "/reset_prefix_cache", "/reset_mm_cache", "/reset_encoder_cache",
                            "/scale_elastic_ep", "/update_weights", "/init_weight_transfer_engine", "/abort_requests",
                            "/start_profile", "/stop_profile", "/inference/v1/generate", "/generative_scoring"]
        for path in controlPosts { table[path] = ["POST": .control(path)] }
        for path in PoolingRoutes.paths { table[path] = ["POST": .pooling(path)] }
        let controlGets = ["/is_paused", "/is_sleeping", "/is_scaling_elastic_ep", "/get_world_size", "/server_info",
                           "/tokenizer_info", "/openapi.json", "/docs", "/redoc"]
        for path in controlGets { table[path] = ["GET": .control(path)] }
        return table
    }()

    static func resolve(method: String, path: String) -> Route {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        if segments.count >= 4, segments[1] == "v1", segments[2] == "responses", !segments[3].isEmpty {
            let id = String(segments[3])
            switch (segments.count, method) {
            case (4, "GET"): return .storedResponse(id)
            case (5, "POST") where segments[4] == "cancel": return .cancelResponse(id)
            default: return .notFound
            }
        }
        guard let methods = table[path] else { return .notFound }
        return methods[method] ?? .methodNotAllowed
    }

    /// vLLM's `--api-key` middleware guards these prefixes only; everything else stays open.
    static let guardedPrefixes = ["/v1", "/v2", "/inference"]

    static func requiresKey(method: String, path: String) -> Bool {
        method != "OPTIONS" && guardedPrefixes.contains { path.hasPrefix($0) }
    }
}

/// vLLM's check of `Authorization: <scheme> <token>`: scheme compared case-insensitively with `bearer`.
func isAuthorized(_ header: String?, keys: [String]) -> Bool {
    guard let header else { return false }
    let parts = header.split(separator: " ", maxSplits: 1)
    guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
    let token = String(parts[1])
    // Compare against every key without stopping early, as vLLM's compare_digest loop does.
    var matched = false
    for key in keys { matched = constantTimeEquals(token, key) || matched }
    return matched
}

func constantTimeEquals(_ a: String, _ b: String) -> Bool {
    let left = Array(a.utf8), right = Array(b.utf8)
    var difference = UInt8(left.count == right.count ? 0 : 1)
    for index in 0..<max(left.count, right.count) {
        difference |= (index < left.count ? left[index] : 0) ^ (index < right.count ? right[index] : 0)
    }
    return difference == 0
}
