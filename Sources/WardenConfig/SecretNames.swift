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
