/// Maps the YAML tree onto ``Deployment``: the one place that knows every key, its type, range and default.
struct DeploymentReader {
    let issues: IssueCollector

    static let portRange = 1...65_535

    /// A name systemd's `Environment=` and a shell both take as one variable: `[A-Za-z_][A-Za-z0-9_]*`.
    static func isEnvironmentName(_ name: String) -> Bool {
        let digits = UInt8(ascii: "0")...UInt8(ascii: "9")
        let lower = UInt8(ascii: "a")...UInt8(ascii: "z"), upper = UInt8(ascii: "A")...UInt8(ascii: "Z")
        guard let first = name.utf8.first, !digits.contains(first) else { return false }
        return name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || digits.contains($0) || lower.contains($0) || upper.contains($0) }
    }

    func read(_ root: MappingReader) -> Deployment? {
        let vllmSection = root.section("vllm")
        let vllm = readVLLM(vllmSection)
        let paths = readPaths(root.section("paths"))
        let gatewaySection = root.section("gateway")
        let systemd = readSystemd(root.section("systemd"))
        root.finish()
        if vllmSection == nil, !issues.issues.contains(where: { $0.path == "vllm" }) {
            issues.report("vllm", nil, "missing section; at least `vllm:` with `model:` is required")
        }
        // Read even when `vllm` is broken, so every problem is reported in one pass.
        let gateway = readGateway(gatewaySection, defaultUpstream: vllm?.defaultUpstream ?? Deployment.VLLM(model: "m").defaultUpstream)
        guard let vllm else { return nil }
        checkAcrossSections(vllm: vllm, gateway: gateway, vllmSection: vllmSection, gatewaySection: gatewaySection)
        return Deployment(vllm: vllm, paths: paths, gateway: gateway, systemd: systemd)
    }

    /// Contradictions between sections that would only show once the services run.
    private func checkAcrossSections(vllm: Deployment.VLLM, gateway: Deployment.Gateway, vllmSection: MappingReader?, gatewaySection: MappingReader?) {
        for flag in ["--port", "--host", "--served-model-name"] {
            if let argument = vllm.extraArgs.first(where: { $0 == flag || $0.hasPrefix(flag + "=") }) {
                let key = String(flag.dropFirst(2)).replacing("-", with: "_")
                vllmSection?.report("extra_args", "'\(argument)' contradicts vllm.\(key), which the units, preflight and the gateway read: set vllm.\(key) instead")
            }
        }
        let vllmAddress = ListenAddress("\(vllm.host.contains(":") ? "[\(vllm.host)]" : vllm.host):\(vllm.port)")
        if let listen = ListenAddress(gateway.listen), let vllmAddress, listen.port == vllmAddress.port,
           listen.host == vllmAddress.host || ["0.0.0.0", "::"].contains(listen.host) || ["0.0.0.0", "::"].contains(vllmAddress.host) {
            gatewaySection?.report("listen", "\(gateway.listen) is vLLM's own address (vllm.host:vllm.port): the gateway would proxy to itself; give one of them another port")
        }
        if let listen = ListenAddress(gateway.listen), let admin = ListenAddress(gateway.adminListen), listen.port == admin.port,
           listen.host == admin.host || ["0.0.0.0", "::"].contains(listen.host) || ["0.0.0.0", "::"].contains(admin.host) {
            gatewaySection?.report("admin_listen", "\(gateway.adminListen) overlaps gateway.listen (\(gateway.listen)): the two listeners need their own ports")
        }
        checkMeters(gateway, gatewaySection)
        if gateway.tls != nil {
            gatewaySection?.report("tls", "serving TLS directly is not implemented yet (the gateway would refuse to start): remove it and terminate TLS in Caddy or nginx in front, listed in gateway.trusted_proxies")
        }
    }

    private func readVLLM(_ section: MappingReader?) -> Deployment.VLLM? {
        guard let section else { return nil }
        let model = section.string("model")
        var vllm = Deployment.VLLM(model: model ?? "", servedModelName: section.string("served_model_name"))
        if let host = section.string("host") {
            if isValidHost(host) { vllm.host = host } else { section.report("host", "'\(host)' is not an IP address or host name") }
        }
        vllm.port = section.int("port", in: Self.portRange) ?? vllm.port
        vllm.gpuMemoryUtilization = section.double("gpu_memory_utilization", in: 0.05...1.0) ?? vllm.gpuMemoryUtilization
        vllm.tensorParallelSize = section.int("tensor_parallel_size", in: 1...64) ?? vllm.tensorParallelSize
        vllm.pipelineParallelSize = section.int("pipeline_parallel_size", in: 1...64) ?? vllm.pipelineParallelSize
        vllm.maxModelLen = section.int("max_model_len", in: 16...10_000_000)
        vllm.extraArgs = section.strings("extra_args") ?? vllm.extraArgs
        vllm.venv = absolutePath(section, "venv") ?? vllm.venv
        vllm.user = account(section, "user") ?? vllm.user
        vllm.group = account(section, "group") ?? vllm.group
        vllm.shutdownTimeout = section.seconds("shutdown_timeout", in: 0...3600) ?? vllm.shutdownTimeout
        vllm.environment = section.stringMap("environment") ?? vllm.environment
        for name in vllm.environment.keys.sorted() where !Self.isEnvironmentName(name) {
            section.report("environment", "'\(name)' is not a variable name: use letters, digits and _, not starting with a digit")
        }
        vllm.envFile = absolutePath(section, "env_file") ?? vllm.envFile
        section.finish()

        if let argument = vllm.extraArgs.first(where: { $0 == "--api-key" || $0.hasPrefix("--api-key=") }) {
            section.report("extra_args", "'\(argument)' puts the key on the command line, where `ps` shows it; put VLLM_API_KEY in \(vllm.envFile) instead")
        }
        guard let model, !model.isEmpty else {
            section.report("model", "required: a local model directory or a Hugging Face model name")
            return nil
        }
        return vllm
    }

    private func readPaths(_ section: MappingReader?) -> Deployment.Paths {
        var paths = Deployment.Paths()
        guard let section else { return paths }
        paths.models = absolutePath(section, "models") ?? paths.models
        paths.state = ownDirectory(section, "state", absolutePath(section, "state")) ?? paths.state
        paths.cache = ownDirectory(section, "cache", absolutePath(section, "cache")) ?? paths.cache
        section.finish()
        return paths
    }

    private func readGateway(_ section: MappingReader?, defaultUpstream: String) -> Deployment.Gateway {
        var gateway = Deployment.Gateway(upstream: defaultUpstream)
        guard let section else { return gateway }
        gateway.listen = listenAddress(section, "listen") ?? gateway.listen
        if let upstream = section.string("upstream") {
            if isValidUpstream(upstream) { gateway.upstream = upstream } else {
                section.report("upstream", "'\(upstream)' is not an http:// or https:// URL with a host (e.g. http://127.0.0.1:8000)")
            }
        }
        if let keyStore = absolutePath(section, "key_store") {
            if ownDirectory(section, "key_store", parentDirectory(of: keyStore), what: "the directory of") != nil { gateway.keyStore = keyStore }
        }
        if let endpoints = section.strings("allowed_endpoints") {
            for (index, endpoint) in endpoints.enumerated() where !isValidEndpoint(endpoint) {
                section.reportItem("allowed_endpoints", index, "'\(endpoint)' must be `METHOD /path`, e.g. `POST /v1/chat/completions`")
            }
            gateway.allowedEndpoints = endpoints
        }
        gateway.limits = readLimits(section.section("limits"))
        gateway.bans = readBans(section.section("bans"))
        gateway.usage = readUsage(section.section("usage"))
        gateway.drainTimeout = section.seconds("drain_timeout", in: 0...3600) ?? gateway.drainTimeout
        gateway.adminListen = listenAddress(section, "admin_listen") ?? gateway.adminListen
        gateway.maxBodyBytes = section.int("max_body_bytes", in: 1024...(256 * 1024 * 1024)) ?? gateway.maxBodyBytes
        if let tls = section.section("tls") {
            let certificate = absolutePath(tls, "certificate")
            let privateKey = absolutePath(tls, "private_key")
            tls.finish()
            if let certificate, let privateKey {
                gateway.tls = .init(certificate: certificate, privateKey: privateKey)
            } else {
                issues.report(tls.path, nil, "needs both `certificate` and `private_key`")
            }
        }
        gateway.trustedProxies = networks(section, "trusted_proxies") ?? gateway.trustedProxies
        if let headers = section.strings("forward_headers") {
            for (index, name) in headers.enumerated() {
                let lower = name.lowercased()
                if lower.isEmpty || !lower.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x5F }) {
                    section.reportItem("forward_headers", index, "'\(name)' is not a header name")
                } else if Deployment.Gateway.reservedHeaders.contains(lower) {
                    section.reportItem("forward_headers", index, "'\(name)' is set by the gateway itself and cannot be forwarded")
                }
            }
            gateway.forwardHeaders = headers.map { $0.lowercased() }
        }
        gateway.maxConnections = section.int("max_connections", in: 16...1_000_000) ?? gateway.maxConnections
        gateway.maxConnectionsPerAddress = section.int("max_connections_per_address", in: 1...1_000_000) ?? gateway.maxConnectionsPerAddress
        gateway.writeTimeout = section.seconds("write_timeout", in: 1...3600) ?? gateway.writeTimeout
        gateway.routeCosts = routeCosts(section)
        gateway.audioTokensPerSecond = section.int("audio_tokens_per_second", in: 1...100_000)
        gateway.allowBackgroundResponses = section.bool("allow_background_responses") ?? gateway.allowBackgroundResponses
        section.finish()
        return gateway
    }

    private func readLimits(_ section: MappingReader?) -> Deployment.Limits {
        var limits = Deployment.Limits()
        guard let section else { return limits }
        limits.enabled = section.bool("enabled") ?? limits.enabled
        limits.requestsPerMinute = section.int("requests_per_minute", in: Deployment.Limits.Range.requestsPerMinute) ?? limits.requestsPerMinute
        limits.burst = section.int("burst", in: Deployment.Limits.Range.burst) ?? limits.burst
        limits.tokensPerMinute = section.int("tokens_per_minute", in: Deployment.Limits.Range.tokensPerMinute) ?? limits.tokensPerMinute
        limits.concurrency = section.int("concurrency", in: Deployment.Limits.Range.concurrency) ?? limits.concurrency
        limits.globalConcurrency = section.int("global_concurrency", in: 1...1_000_000) ?? limits.globalConcurrency
        limits.modelConcurrency = section.int("model_concurrency", in: 1...1_000_000)
        limits.leaseTimeout = section.seconds("lease_timeout", in: 10...(7 * 86_400)) ?? limits.leaseTimeout
        limits.defaultMaxTokens = section.int("default_max_tokens", in: 1...10_000_000) ?? limits.defaultMaxTokens
        limits.tokensPerDay = section.int("tokens_per_day", in: Deployment.Limits.Range.quota)
        limits.tokensPerMonth = section.int("tokens_per_month", in: Deployment.Limits.Range.quota)
        if let zone = section.string("quota_time_zone") {
            if UTCOffset(zone) != nil { limits.quotaTimeZone = zone } else {
                section.report("quota_time_zone", "'\(zone)' must be UTC or a whole-hour offset such as +02:00 or UTC-5 (named zones with daylight saving are not supported)")
            }
        }
        section.finish()
        return limits
    }

    private func readUsage(_ section: MappingReader?) -> Deployment.UsagePolicy {
        var usage = Deployment.UsagePolicy()
        guard let section else { return usage }
        usage.retentionDays = section.int("retention_days", in: 1...36_500) ?? usage.retentionDays
        usage.hourlyDays = section.int("hourly_days", in: 1...36_500) ?? usage.hourlyDays
        section.finish()
        if usage.hourlyDays > usage.retentionDays {
            section.report("hourly_days", "\(usage.hourlyDays) is above retention_days (\(usage.retentionDays)); hours cannot be kept longer than anything")
        }
        return usage
    }

    private func readBans(_ section: MappingReader?) -> Deployment.BanPolicy {
        var bans = Deployment.BanPolicy()
        guard let section else { return bans }
        bans.enabled = section.bool("enabled") ?? bans.enabled
        bans.maxFailures = section.int("max_failures", in: 1...1000) ?? bans.maxFailures
        bans.findTime = section.seconds("find_time", in: 1...(30 * 86_400)) ?? bans.findTime
        bans.banTime = section.seconds("ban_time", in: 1...(365 * 86_400)) ?? bans.banTime
        bans.incrementFactor = section.double("increment_factor", in: 1...100) ?? bans.incrementFactor
        bans.maxBanTime = section.seconds("max_ban_time", in: 1...(365 * 86_400)) ?? bans.maxBanTime
        bans.ignoreNetworks = networks(section, "ignore_networks") ?? bans.ignoreNetworks
        section.finish()
        if bans.maxBanTime < bans.banTime {
            section.report("max_ban_time", "\(bans.maxBanTime) is below ban_time (\(bans.banTime)); it must be at least ban_time")
        }
        return bans
    }

    private func readSystemd(_ section: MappingReader?) -> Deployment.Systemd {
        var systemd = Deployment.Systemd()
        guard let section else { return systemd }
        systemd.memoryDenyWriteExecute = section.bool("memory_deny_write_execute") ?? systemd.memoryDenyWriteExecute
        systemd.ipAddressAllow = networks(section, "ip_address_allow") ?? systemd.ipAddressAllow
        section.finish()
        return systemd
    }

    // MARK: - Field validators

    private func absolutePath(_ section: MappingReader, _ key: String) -> String? {
        guard let path = section.string(key) else { return nil }
        guard path.hasPrefix("/") else {
            section.report(key, "'\(path)' must be an absolute path (starting with /)")
            return nil
        }
        return path
    }

    /// Directories `warden install` makes private to a service account (mode 0700, chowned): never one the system
    /// shares, or install would lock every other service out of it; never under a tree the units hide.
    static let sharedDirectories: Set<String> = ["/", "/bin", "/boot", "/data", "/dev", "/etc", "/home", "/lib", "/media", "/mnt", "/opt",
                                                 "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/local", "/var",
                                                 "/var/cache", "/var/lib", "/var/log", "/var/tmp"]

    private func ownDirectory(_ section: MappingReader, _ key: String, _ directory: String?, what: String = "") -> String? {
        guard var directory else { return nil }
        while directory.count > 1, directory.hasSuffix("/") { directory.removeLast() }
        if Self.sharedDirectories.contains(directory) {
            section.report(key, "\(what.isEmpty ? "" : what + " ")'\(directory)' is a directory the system shares, which install would make "
                           + "private to one service account; give it a directory of its own (e.g. \(directory == "/" ? "" : directory)/warden)")
            return nil
        }
        if ["/home/", "/root/", "/run/user/"].contains(where: { directory.hasPrefix($0) }) {
            section.report(key, "'\(directory)' is under a tree the units hide from the services (ProtectHome=); use a directory under /var/lib or /srv")
            return nil
        }
        return directory
    }

    private func account(_ section: MappingReader, _ key: String) -> String? {
        guard let name = section.string(key) else { return nil }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789_-")
        guard let first = name.first, first.isLetter || first == "_", name.count <= 32, name.allSatisfy(allowed.contains) else {
            section.report(key, "'\(name)' is not a valid account name (lower-case letters, digits, _ and -, at most 32)")
            return nil
        }
        return name
    }

    private func listenAddress(_ section: MappingReader, _ key: String) -> String? {
        guard let text = section.string(key) else { return nil }
        guard let address = ListenAddress(text) else {
            section.report(key, "'\(text)' must be host:port with a port from 1 to 65535, e.g. 127.0.0.1:8080 or [::1]:8080")
            return nil
        }
        return address.description
    }

    private func networks(_ section: MappingReader, _ key: String) -> [String]? {
        guard let entries = section.strings(key) else { return nil }
        for (index, entry) in entries.enumerated() where IPNetwork(entry) == nil {
            section.reportItem(key, index, "'\(entry)' is not an IP address or CIDR network such as 10.0.0.0/8 or fd00::/8")
        }
        return entries
    }

    private func isValidEndpoint(_ text: String) -> Bool { RouteTemplate(text) != nil }

    /// `route_costs`: `METHOD /path` → whole tokens per request.
    private func routeCosts(_ section: MappingReader) -> [String: Int] {
        guard let map = section.stringMap("route_costs") else { return [:] }
        var costs: [String: Int] = [:]
        for (entry, value) in map {
            guard let template = RouteTemplate(entry) else {
                section.report("route_costs", "'\(entry)' must be `METHOD /path`, e.g. `POST /invocations`")
                continue
            }
            guard let cost = Int(value), (0...10_000_000).contains(cost) else {
                section.report("route_costs", "'\(entry)': '\(value)' must be a whole number of tokens from 0 to 10000000")
                continue
            }
            costs[template.description] = cost
        }
        return costs
    }

    /// Every allowed route has a meter, or an explicit cost: a route vLLM generates on without either would let
    /// every key past its token limit.
    private func checkMeters(_ gateway: Deployment.Gateway, _ section: MappingReader?) {
        for entry in gateway.allowedEndpoints {
            guard let template = RouteTemplate(entry), gateway.routeCosts[template.description] == nil else { continue }
            switch RouteCatalog.meter(for: template) {
            case nil:
                section?.report("allowed_endpoints", "'\(entry)' has no meter in Warden (vLLM may generate tokens there that no limit would count): remove it, or give it a cost per request with `route_costs: {\"\(template)\": TOKENS}`")
            case .audio? where gateway.audioTokensPerSecond == nil:
                section?.report("allowed_endpoints", "'\(entry)' is charged by the length of the audio: set `audio_tokens_per_second` (e.g. 50) in the gateway section, or remove it")
            default:
                break
            }
        }
    }

    private func isValidUpstream(_ text: String) -> Bool {
        for scheme in ["http://", "https://"] where text.hasPrefix(scheme) {
            let rest = text.dropFirst(scheme.count)
            let authority = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            return !authority.isEmpty
        }
        return false
    }
}

func isValidHost(_ host: String) -> Bool {
    if IPAddress(host) != nil { return true }
    let labels = host.split(separator: ".", omittingEmptySubsequences: false)
    // Digits and dots only is meant as an IPv4 address (no top-level domain is numeric): `999.1.1.1` is no name.
    if labels.allSatisfy({ $0.allSatisfy(\.isNumber) }) { return false }
    return !host.isEmpty && host.count <= 253 && labels.allSatisfy { label in
        !label.isEmpty && label.count <= 63 && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
    }
}
