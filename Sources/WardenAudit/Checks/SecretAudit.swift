import WardenPreflight

/// API keys: on the command line, in the unit, weak, or missing.
enum SecretAudit {
    static func findings(_ context: AuditContext) -> [Finding] {
        let target = context.target
        guard let invocation = target.invocation else { return [] }
        var findings: [Finding] = []
        var keys: [(key: String, source: String)] = []
        let flagKeys = invocation.values("--api-key")
        if !flagKeys.isEmpty {
            let resolved = flagKeys.map { resolve($0, environment: target.environment) }
            keys += resolved.map { ($0, "--api-key") }
            let readable = target.pid.map { "/proc/\($0)/cmdline, `ps`" } ?? "`ps` and /proc/<pid>/cmdline once it runs"
            findings.append(Finding("secrets.cmdline-key", .high, "API key visible in the process command line",
                                    evidence: ["--api-key \(resolved.map(masked).joined(separator: " ")) in \(target.invocationSource ?? "the command line")",
                                               "any local user reads it from \(readable)"],
                                    fix: "remove --api-key; put VLLM_API_KEY=… in a root-owned 0640 EnvironmentFile= instead, then rotate the key",
                                    wardenFix: "warden install (writes the key file and a start script without it)"))
        }
        if let directives = target.directives {
            let inUnit = directives.values("Environment").flatMap { shellWords($0) }.filter { $0.hasPrefix("VLLM_API_KEY=") }
                + directives.values("ExecStart").filter { $0.contains("--api-key") }.map { _ in "ExecStart= … --api-key" }
            if !inUnit.isEmpty {
                findings.append(Finding("secrets.unit-key", .high, "API key written in the unit file",
                                        evidence: inUnit.map { $0.hasPrefix("VLLM_API_KEY=") ? "Environment=VLLM_API_KEY=\(masked(String($0.dropFirst(13))))" : $0 }
                                            + ["unit files are world-readable, and `systemctl show` prints Environment= to any user"],
                                        fix: "move it to an EnvironmentFile= owned by root, mode 0640, then rotate it", wardenFix: "warden install"))
            }
        }
        if let key = target.environment["VLLM_API_KEY"], !key.isEmpty, flagKeys.isEmpty { keys.append((key, "VLLM_API_KEY")) }
        for (key, source) in keys where !key.hasPrefix("$") && !Preflight.isStrongKey(key) {
            findings.append(Finding("secrets.weak-key", .high, "the API key is weak or looks like a default",
                                    evidence: ["\(source) \(masked(key)): \(key.count) characters, \(Set(key).count) distinct (need ≥ 32, ≥ 10, no placeholder words)"],
                                    fix: "replace it with `openssl rand -hex 32`", wardenFix: "warden install (generates one)"))
        }
        if keys.isEmpty {
            let environmentKnown = target.pid.map { context.host.processEnvironment(pid: $0) != nil } ?? true
            findings.append(Finding("secrets.no-key", context.exposedBeyondLoopback ? .critical : .medium, "vLLM runs without an API key",
                                    evidence: ["no --api-key and no VLLM_API_KEY in " + (target.pid != nil && environmentKnown ? "the process environment" : "the unit's environment")]
                                        + (environmentKnown ? [] : ["(the process environment is not readable as this user: run as root to be sure)"]),
                                    fix: "set VLLM_API_KEY in a 0640 EnvironmentFile= and put an authenticating gateway in front",
                                    wardenFix: "warden install, then warden keys create"))
        }
        return findings
    }

    /// `$VLLM_API_KEY` / `${VLLM_API_KEY}` in a script: the value the shell expands it to, when known.
    static func resolve(_ word: String, environment: [String: String]) -> String {
        guard word.hasPrefix("$") else { return word }
        let name = word.dropFirst().trimming(["{", "}"])
        return environment[name] ?? word
    }
}
