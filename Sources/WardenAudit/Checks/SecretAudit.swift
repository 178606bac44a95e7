import WardenConfig
import WardenPreflight

/// API keys and other credentials: on the command line, in the unit, weak, or missing.
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
        let hfTokens = invocation.values("--hf-token")
        if !hfTokens.isEmpty {
            let resolved = hfTokens.map { resolve($0, environment: target.environment) }
            findings.append(Finding("secrets.cmdline-token", .high, "Hugging Face token visible in the process command line",
                                    evidence: ["--hf-token \(resolved.map(masked).joined(separator: " ")) in \(target.invocationSource ?? "the command line")"],
                                    fix: "remove --hf-token; put HF_TOKEN=… in a root-owned 0640 EnvironmentFile= instead, then replace the token at huggingface.co/settings/tokens",
                                    wardenFix: "warden install, with HF_TOKEN in vllm.env_file"))
        }
        if let directives = target.directives {
            // Any credential, not only vLLM's key: an HF_TOKEN here hands the account's gated models to every local user.
            let inUnit = directives.values("Environment").flatMap { shellWords($0) }.compactMap { assignment -> String? in
                guard let equals = assignment.firstIndex(of: "=") else { return nil }
                let name = String(assignment[..<equals]), value = String(assignment[assignment.index(after: equals)...])
                return isSecretVariable(name: name, value: value) ? "Environment=\(name)=\(masked(value))" : nil
            }
            let execStart = directives.values("ExecStart")
            let flags = (execStart.contains { $0.contains("--api-key") } ? ["ExecStart= … --api-key"] : [])
                + (execStart.contains { !flagValues("--hf-token", in: shellWords($0)).isEmpty } ? ["ExecStart= … --hf-token"] : [])
            if !inUnit.isEmpty || !flags.isEmpty {
                findings.append(Finding("secrets.unit-key", .high, "API key or other credential written in the unit file",
                                        evidence: inUnit + flags + ["unit files are world-readable, and `systemctl show` prints Environment= to any user"],
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
