import FoundationEssentials

extension Deployment {
    /// Choices that are valid but probably not what the operator wants: printed by `config check` and logged by the
    /// gateway at start, never fatal (each has a legitimate use, e.g. a firewall in front, a model copied later).
    public func warnings(pathExists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }) -> [ConfigIssue] {
        var found: [ConfigIssue] = []
        if let admin = ListenAddress(gateway.adminListen), !isLoopbackHost(admin.host) {
            found.append(ConfigIssue(path: "gateway.admin_listen", message: "\(gateway.adminListen) is reachable from other hosts, and the admin listener (metrics, readiness, ban control) takes no key: keep it on 127.0.0.1, or firewall the port"))
        }
        if !isLoopbackHost(vllm.host) {
            found.append(ConfigIssue(path: "vllm.host", message: "vLLM listens on \(vllm.host): clients that reach it directly bypass every key and limit of the gateway; keep 127.0.0.1 unless a firewall allows only the gateway"))
        }
        if vllm.isLocalModel, !pathExists(vllm.model) {
            found.append(ConfigIssue(path: "vllm.model", message: "\(vllm.model) does not exist (yet): vLLM will not start until it does (preflight's model.files checks it)"))
        }
        let repeated = Dictionary(grouping: gateway.allowedEndpoints, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted()
        if !repeated.isEmpty {
            found.append(ConfigIssue(path: "gateway.allowed_endpoints", message: "listed more than once: \(repeated.joined(separator: ", ")); once is enough"))
        }
        for (path, entries) in [("gateway.trusted_proxies", gateway.trustedProxies), ("gateway.bans.ignore_networks", gateway.bans.ignoreNetworks)] {
            for entry in entries where entry.contains("/") && IPNetwork(entry)?.hasHostBits == true {
                found.append(ConfigIssue(path: path, message: "\(entry) has host bits set: it covers its whole network, not that one address; write the network's first address, or a /32 (/128) for one host"))
            }
        }
        return found + credentialsInUnit()
    }
}
