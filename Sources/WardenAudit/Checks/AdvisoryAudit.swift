import WardenPreflight

/// The installed vLLM version against the shipped advisory table.
enum AdvisoryAudit {
    static func findings(_ context: AuditContext) -> [Finding] {
        guard context.target.invocation != nil else { return [] }
        guard let text = context.target.version, let version = PackageVersion(text) else {
            return [Finding("advisory.version-unknown", .info, "the installed vLLM version could not be read",
                            evidence: [context.target.venv.map { "no readable vllm-*.dist-info/METADATA under \($0)/lib/python3*/site-packages" } ?? "the venv of the vLLM executable is unknown"],
                            fix: "check `vllm --version` against the advisories at https://github.com/vllm-project/vllm/security")]
        }
        return AdvisoryTable.entries.filter { $0.affects(version) }.map { advisory in
            let reason = reachable(advisory.reachability, context)
            return Finding("advisory.\(advisory.id)", reason == nil ? .low : advisory.severity,
                           "vLLM \(text) is affected by \(advisory.id) (\(advisory.cve)), fixed in \(advisory.fixed)",
                           evidence: [advisory.summary, "affected: \(advisory.range)",
                                      reason.map { "reachable here because \($0)" } ?? "not reachable with these settings (needs \(advisory.reachability.requirement))",
                                      "source: \(advisory.source)"],
                           fix: "upgrade vLLM to \(advisory.fixed) or later (`\(context.target.venv.map { "\($0)/bin/" } ?? "")pip install -U 'vllm>=\(advisory.fixed)'`)")
        }
    }

    /// Why the advisory applies to this deployment, or `nil` when the setting it needs is absent.
    static func reachable(_ reachability: Reachability, _ context: AuditContext) -> String? {
        guard let invocation = context.target.invocation else { return nil }
        switch reachability {
        case .anyClient(let what):
            return what + " can send it"
        case .directAPIKey:
            return context.exposedBeyondLoopback ? "vLLM listens beyond loopback and its own key check is the lock" : nil
        case .kvConnector(let name):
            return invocation.value("--kv-transfer-config").flatMap { $0.contains(name) ? "--kv-transfer-config uses \(name)" : nil }
        case .multiNode:
            if let nodes = invocation.value("--nnodes").flatMap(Int.init), nodes > 1 { return "--nnodes \(nodes)" }
            return invocation.value("--distributed-executor-backend") == "ray" ? "--distributed-executor-backend ray" : nil
        case .autoMap:
            guard let model = invocation.model, let bytes = context.host.readFile(model + "/config.json", limit: 4 << 20),
                  ModelConfig(bytes).autoMap else { return nil }
            return "\(model)/config.json has auto_map"
        case .pythonOptimize:
            if let level = context.target.environment["PYTHONOPTIMIZE"], !level.isEmpty, level != "0" { return "PYTHONOPTIMIZE=\(level)" }
            return context.target.pid.flatMap(context.host.commandLine(pid:))?.prefix(3).contains { $0.hasPrefix("-O") } == true ? "python runs with -O" : nil
        case .untrustedModel:
            return "vLLM loads \(invocation.model ?? "a model") and this audit cannot tell whether its source is trusted"
        }
    }
}
