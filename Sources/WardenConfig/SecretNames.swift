/// Whether an environment variable holds a credential, judged by its name (`HF_TOKEN`, `WANDB_API_KEY`,
/// `AWS_SECRET_ACCESS_KEY`, `DB_PASSWORD`, `OTEL_EXPORTER_OTLP_HEADERS`) or by a password in a URL value
/// (`HTTPS_PROXY=http://user:pass@proxy`). Such a value must not sit in a unit's `Environment=`, which the unit file
/// (mode 0644) and `systemctl show` hand to every local user. A value that is an absolute path names the file that
/// holds the secret (`GOOGLE_APPLICATION_CREDENTIALS=/etc/…`), and switches and locations (`HF_HUB_DISABLE_IMPLICIT_TOKEN`,
/// `HF_TOKEN_PATH`, `…_CREDENTIALS_URI`) are settings, not secrets.
public func isSecretVariable(name: String, value: String) -> Bool {
    if value.hasPrefix("/") { return false }
    if hasPasswordInURL(value) { return true }
    let upper = name.uppercased()
    let words = upper.split(separator: "_").map(String.init)
    guard let last = words.last, !["FILE", "PATH", "PATHS", "DIR", "URI", "URL", "ENDPOINT", "HOST", "PORT"].contains(last),
          !words.contains(where: { ["DISABLE", "ENABLE", "USE"].contains($0) }) else { return false }
    if upper.hasPrefix("OTEL_"), last == "HEADERS" { return true }  // the OTLP exporter's API key travels there
    let secretWords: Set = ["TOKEN", "SECRET", "SECRETS", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL", "CREDENTIALS", "APIKEY"]
    if words.contains(where: secretWords.contains) || (words.count > 1 && ["PASS", "PWD"].contains(last)) { return true }
    // A key: the last word, or followed by its encoding (GCP_SA_KEY_JSON).
    guard let key = words.lastIndex(of: "KEY") else { return false }
    return key == words.count - 1 || ["JSON", "B64", "BASE64", "PEM"].contains(words[key + 1])
}

/// `scheme://user:password@host…`: a URL that carries its password.
func hasPasswordInURL(_ value: String) -> Bool {
    guard let scheme = value.firstRange(of: "://") else { return false }
    let authority = value[scheme.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
    guard let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") else { return false }
    return authority.index(after: colon) < at
}

/// The values given to `flag` in a `vllm serve` argument list (`--flag=v`, or `--flag v`); a bare flag has none.
public func flagValues(_ flag: String, in arguments: [String]) -> [String] {
    var values: [String] = []
    for (index, argument) in arguments.enumerated() {
        if argument.hasPrefix(flag + "=") {
            values.append(String(argument.dropFirst(flag.count + 1)))
        } else if argument == flag, index + 1 < arguments.count, !arguments[index + 1].hasPrefix("-") {
            values.append(arguments[index + 1])
        }
    }
    return values.filter { !$0.isEmpty }
}

extension Deployment {
    /// Credentials the rendered units would show to every local user: a secret in `vllm.environment` (`Environment=`
    /// is printed by `systemctl show`) or a token given to `--hf-token` in `vllm.extra_args` (the start script and
    /// `ps`; a bare `--hf-token` uses the stored login and is fine). Commands that write units refuse them; the gateway
    /// and `config check` warn, so a gateway upgraded under such a file still starts. (`--api-key` is refused when
    /// the file is read, as it always was.)
    public func credentialsInUnit() -> [ConfigIssue] {
        var found: [ConfigIssue] = []
        if !flagValues("--hf-token", in: vllm.extraArgs).isEmpty {
            found.append(ConfigIssue(path: "vllm.extra_args", message: "--hf-token with a value puts the token on the command line, where `ps` shows it; put HF_TOKEN in \(vllm.envFile) instead"))
        }
        for (name, value) in vllm.environment.sorted(by: { $0.key < $1.key }) where isSecretVariable(name: name, value: value) {
            found.append(ConfigIssue(path: "vllm.environment", message: "'\(name)' looks like a secret, and vllm.service's Environment= is readable by every local user (the unit file, `systemctl show`): put \(name)=… in \(vllm.envFile) (root-owned, mode 0640), which the unit already reads"))
        }
        return found
    }
}
