import WardenConfig

/// Who can reach vLLM: its listen address, the routes `--api-key` leaves open, distributed ports, the gateway's admin.
enum ExposureAudit {
    /// Routes vLLM's `--api-key` never guards (it checks `/v1`, `/v2`, `/inference` only). Probed with `GET`: a route
    /// that exists answers (200, or 405 for a POST route) without running anything; 401 means a key is required,
    /// 404 that it is absent or a gateway denies it.
    static let openRoutes = ["/tokenize", "/pause", "/invocations", "/metrics", "/docs"]
    /// Routes present only with `VLLM_SERVER_DEV_MODE=1`: arbitrary engine RPC and sleep.
    static let devRoutes = ["/collective_rpc", "/sleep"]

    static func findings(_ context: AuditContext) -> [Finding] {
        guard let invocation = context.target.invocation else { return [] }
        var findings: [Finding] = []
        let exposed = context.exposedBeyondLoopback
        if exposed {
            let sockets = context.target.apiSockets.filter { !$0.isLoopback }
            findings.append(Finding("exposure.listen", .high, "vLLM listens beyond loopback",
                                    evidence: sockets.isEmpty ? ["--host \(invocation.host ?? "not set: vLLM binds every interface")"]
                                        : sockets.map { "listening on \($0) (/proc/net/tcp)" } + ["--host \(invocation.host ?? "(not set)")"],
                                    fix: "--host 127.0.0.1 (or --uds) and let clients in through an authenticating gateway; IPAddressDeny=any + IPAddressAllow=localhost in the unit",
                                    wardenFix: "warden install (vLLM on 127.0.0.1 behind warden gateway)"))
        }
        if let address = context.probeAddress { findings += probe(address, exposed: exposed, host: context.host) }
        findings += distributedPorts(context, invocation: invocation)
        findings += gatewayAdmin(context.deployment)
        return findings
    }

    /// The Warden gateway's admin listener (metrics and readiness, no key) off loopback.
    static func gatewayAdmin(_ deployment: Deployment?) -> [Finding] {
        guard let deployment, let admin = ListenAddress(deployment.gateway.adminListen),
              !isLoopbackHost(admin.host) else { return [] }
        return [Finding("exposure.gateway-admin", .high, "the Warden gateway's admin listener is off loopback",
                        evidence: ["gateway.admin_listen: \(deployment.gateway.adminListen)", "it serves /metrics and readiness without a key"],
                        fix: "set gateway.admin_listen: 127.0.0.1:9091 and scrape through an SSH tunnel or a local agent",
                        wardenFix: "warden install")]
    }

    /// Unauthenticated `GET`s on the routes vLLM leaves open, and on `/v1/models` to learn whether a key is set at all.
    static func probe(_ address: (host: String, port: Int), exposed: Bool, host: any AuditHost) -> [Finding] {
        let base = address.host.contains(":") ? "http://[\(address.host)]:\(address.port)" : "http://\(address.host):\(address.port)"
        var answering: [(route: String, status: Int)] = []
        var unclear: [String] = []
        let routes = ["/v1/models"] + openRoutes + devRoutes
        for route in routes {
            switch host.httpGet(host: address.host, port: address.port, path: route, timeout: .seconds(3)) {
            case .status(let status) where (200..<300).contains(status) || status == 405:
                answering.append((route, status))  // served, or a POST route that exists
            case .status(401), .status(403), .status(404):
                continue
            case .status(let status):
                unclear.append("GET \(route) → \(status)")  // a redirect or an error proves neither way
            case .failed(let reason):
                unclear.append("GET \(route): \(reason)")
            }
        }
        var findings: [Finding] = []
        if !unclear.isEmpty {
            // A probe that did not run must not read as a clean result.
            let none = unclear.count == routes.count
            findings.append(Finding("exposure.probe-inconclusive", none ? .medium : .info,
                                    none ? "the live probe learned nothing at \(base): exposure is unchecked" : "\(unclear.count) of \(routes.count) probes at \(base) were inconclusive",
                                    evidence: Array(unclear.prefix(8)),
                                    fix: "point --url at vLLM's own port (not a proxy that redirects or fails), or check its routes by hand"))
        }
        let open = answering.filter { openRoutes.contains($0.route) }
        if !open.isEmpty {
            findings.append(Finding("exposure.open-routes", exposed ? .high : .low, "\(open.count) route(s) answer without a key at \(base)",
                                    evidence: open.map { "GET \($0.route) → \($0.status)\($0.status == 405 ? " (exists; it is a POST route)" : "")" }
                                        + ["vLLM's --api-key guards /v1, /v2 and /inference only: /invocations runs inference, /pause stops serving, /tokenize burns CPU, /docs lists every route"],
                                    fix: "keep vLLM on 127.0.0.1 and expose only an allow-list of routes through a gateway; add --disable-fastapi-docs",
                                    wardenFix: "warden gateway (default-deny allow-list)"))
        }
        let dev = answering.filter { devRoutes.contains($0.route) }
        if !dev.isEmpty {
            findings.append(Finding("exposure.dev-routes", exposed ? .critical : .high, "development routes answer without a key",
                                    evidence: dev.map { "GET \($0.route) → \($0.status)" } + ["/collective_rpc runs arbitrary methods in the engine"],
                                    fix: "unset VLLM_SERVER_DEV_MODE and restart vLLM"))
        }
        if let models = answering.first(where: { $0.route == "/v1/models" }), models.status == 200 {
            findings.append(Finding("exposure.unauthenticated-api", exposed ? .critical : .medium, "the OpenAI API answers without a key at \(base)",
                                    evidence: ["GET /v1/models → 200 without Authorization"],
                                    fix: "set VLLM_API_KEY for vLLM and keep it on loopback behind a gateway", wardenFix: "warden install"))
        }
        return findings
    }

    /// torch.distributed, KV-transfer and data-parallel sockets on other interfaces: unauthenticated, often pickle.
    static func distributedPorts(_ context: AuditContext, invocation: VLLMInvocation) -> [Finding] {
        var evidence = context.target.otherSockets.filter { !$0.isLoopback }.map { "vLLM process listens on \($0)" }
        for option in ["--data-parallel-address", "--master-addr"] {
            if let value = invocation.value(option), !["127.0.0.1", "localhost", "::1"].contains(value) { evidence.append("\(option) \(value)") }
        }
        if let transfer = invocation.value("--kv-transfer-config") { evidence.append("--kv-transfer-config \(transfer)") }
        if let nodes = invocation.value("--nnodes").flatMap(Int.init), nodes > 1 { evidence.append("--nnodes \(nodes)") }
        guard !evidence.isEmpty else { return [] }
        return [Finding("exposure.distributed-ports", .high, "multi-node, KV-transfer or data-parallel channels reachable from the network",
                        evidence: evidence + ["these channels have no authentication or encryption; several vLLM advisories deserialise pickle from them"],
                        fix: "bind them to a private interface (VLLM_HOST_IP, --data-parallel-address) on an isolated network and firewall the ports; on one host keep IPAddressDeny=any + IPAddressAllow=localhost",
                        wardenFix: "warden unit render (IPAddressDeny=any)")]
    }
}
