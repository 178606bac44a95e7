/// Whether an environment variable's name says it holds a credential (`HF_TOKEN`, `WANDB_API_KEY`,
/// `AWS_SECRET_ACCESS_KEY`, `DB_PASSWORD`): such a value must not sit in a unit's `Environment=`, which the unit file
/// (mode 0644) and `systemctl show` hand to every local user. Names of a file or path that holds one
/// (`HF_TOKEN_PATH`, `SSL_KEY_FILE`) are not secrets themselves.
public func isSecretVariableName(_ name: String) -> Bool {
    let words = name.uppercased().split(separator: "_")
    guard let last = words.last, !["FILE", "PATH", "DIR", "PATHS"].contains(last) else { return false }
    return words.contains { ["TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIALS"].contains($0) } || last == "KEY"
}

/// `vllm serve` flags whose value is a credential, which the command line shows to every local user (`ps`).
public let secretVLLMFlags = ["--api-key", "--hf-token"]

extension Deployment {
    /// Credentials the rendered units would show to every local user: a secret-looking name in `vllm.environment`
    /// (`Environment=` is printed by `systemctl show`) or `--hf-token` in `vllm.extra_args` (the start script and `ps`).
    /// Commands that write units refuse them; the others warn, so an upgraded gateway still starts.
    /// (`--api-key` is refused when the file is read, as it always was.)
    public func credentialsInUnit() -> [ConfigIssue] {
        var found: [ConfigIssue] = []
        if let argument = vllm.extraArgs.first(where: { $0 == "--hf-token" || $0.hasPrefix("--hf-token=") }) {
            found.append(ConfigIssue(path: "vllm.extra_args", message: "'\(argument)' puts a secret on the command line, where `ps` shows it; put HF_TOKEN in \(vllm.envFile) instead"))
        }
        for name in vllm.environment.keys.sorted() where isSecretVariableName(name) {
            found.append(ConfigIssue(path: "vllm.environment", message: "'\(name)' looks like a secret, and vllm.service's Environment= is readable by every local user (the unit file, `systemctl show`): put \(name)=… in \(vllm.envFile) (root-owned, mode 0640), which the unit already reads"))
        }
        return found
    }
}
