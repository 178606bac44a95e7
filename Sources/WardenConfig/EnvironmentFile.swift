/// The value an `EnvironmentFile=` gives `name`, read as systemd reads the file: `NAME=value` lines, blank lines and
/// `#`/`;` comments skipped, white space around the name and value dropped, one pair of enclosing quotes removed, and
/// the last assignment winning. `nil` when the file never assigns it.
public func environmentFileValue(_ name: String, in text: String) -> String? {
    var found: String?
    for rawLine in text.split(whereSeparator: \.isNewline) {
        let line = rawLine.trimmed()
        guard !line.isEmpty, line.first != "#", line.first != ";", let equals = line.firstIndex(of: "="),
              line[..<equals].trimmed() == name else { continue }
        var value = line[line.index(after: equals)...].trimmed()
        if value.count >= 2, let quote = value.first, quote == "\"" || quote == "'", value.last == quote {
            value = String(value.dropFirst().dropLast())
        }
        found = value
    }
    return found
}

/// The credential id under which the gateway's unit loads vLLM's key file (`LoadCredential=vllm.env:<env_file>`):
/// systemd copies the file into `$CREDENTIALS_DIRECTORY`, readable by the gateway alone, and the gateway takes only
/// `VLLM_API_KEY` from it. Other secrets vLLM keeps there (`HF_TOKEN`) never enter the gateway's environment.
public let gatewayKeyFileCredential = "vllm.env"

/// vLLM's key for the gateway: `$VLLM_API_KEY` when set (a run outside systemd, or a drop-in that sets it), else the
/// `VLLM_API_KEY` line of the key file loaded as a credential. `readFile` returns a file's text, nil when unreadable.
public func gatewayUpstreamKey(environment: (String) -> String?, readFile: (String) -> String?) -> String? {
    if let key = environment("VLLM_API_KEY") { return key }
    guard let directory = environment("CREDENTIALS_DIRECTORY"), let text = readFile(directory + "/" + gatewayKeyFileCredential) else { return nil }
    return environmentFileValue("VLLM_API_KEY", in: text)
}
