/// The value an `EnvironmentFile=` gives `name` (the last assignment wins), or nil when it assigns none.
public func environmentFileValue(_ name: String, in text: String) -> String? {
    environmentFileAssignments(text).last { $0.name == name }?.value
}

/// The assignments of an `EnvironmentFile=`, parsed as systemd 252 parses one (`parse_env_file_internal`), so that
/// the gateway and preflight read the key vLLM is given: blank lines and `#`/`;` comments skipped (a comment ending
/// in `\` swallows the next line, as 252 does), white space around names and unquoted values dropped, `\` escaping
/// the next character and joining lines, single quotes literal, double quotes unescaping `\"`, `\\`, `\``, `\$`
/// and a line break; a value may mix quoted and unquoted parts (`"a" b` is `ab`).
public func environmentFileAssignments(_ text: String) -> [(name: String, value: String)] {
    enum State { case preKey, key, preValue, value, valueEscape, singleQuoted, doubleQuoted, doubleQuotedEscape, comment, commentEscape }
    let whitespace: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0D], newline: Set<UInt8> = [0x0A, 0x0D]
    var found: [(name: String, value: String)] = []
    var state = State.preKey
    var key: [UInt8] = [], value: [UInt8] = []
    // Where trailing white space began in the key or an unquoted value (cut when the assignment ends).
    var keyWhitespace: Int?, valueWhitespace: Int?
    func append(_ byte: UInt8, to bytes: inout [UInt8], trailingWhitespace start: inout Int?) {
        if !whitespace.contains(byte) { start = nil } else if start == nil { start = bytes.count }
        bytes.append(byte)
    }
    func commit() {
        if let keyWhitespace { key.removeSubrange(keyWhitespace...) }
        if state == .value, let valueWhitespace { value.removeSubrange(valueWhitespace...) }
        found.append((String(decoding: key, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        key = []
        value = []
    }
    for byte in text.utf8 {
        switch state {
        case .preKey:
            if byte == UInt8(ascii: "#") || byte == UInt8(ascii: ";") {
                state = .comment
            } else if !whitespace.contains(byte) {
                state = .key
                keyWhitespace = nil
                key.append(byte)
            }
        case .key:
            if newline.contains(byte) {
                state = .preKey
                key = []
            } else if byte == UInt8(ascii: "=") {
                state = .preValue
                valueWhitespace = nil
            } else {
                append(byte, to: &key, trailingWhitespace: &keyWhitespace)
            }
        case .preValue:
            if newline.contains(byte) {
                commit()
                state = .preKey
            } else if byte == UInt8(ascii: "'") {
                state = .singleQuoted
            } else if byte == UInt8(ascii: "\"") {
                state = .doubleQuoted
            } else if byte == UInt8(ascii: "\\") {
                state = .valueEscape
            } else if !whitespace.contains(byte) {
                state = .value
                value.append(byte)
            }
        case .value:
            if newline.contains(byte) {
                commit()
                state = .preKey
            } else if byte == UInt8(ascii: "\\") {
                state = .valueEscape
                valueWhitespace = nil
            } else {
                append(byte, to: &value, trailingWhitespace: &valueWhitespace)
            }
        case .valueEscape:
            state = .value
            if !newline.contains(byte) { value.append(byte) }  // an escaped line break joins the lines
        case .singleQuoted:
            if byte == UInt8(ascii: "'") { state = .preValue } else { value.append(byte) }
        case .doubleQuoted:
            if byte == UInt8(ascii: "\"") {
                state = .preValue
            } else if byte == UInt8(ascii: "\\") {
                state = .doubleQuotedEscape
            } else {
                value.append(byte)
            }
        case .doubleQuotedEscape:
            state = .doubleQuoted
            if "\"\\`$".utf8.contains(byte) {
                value.append(byte)
            } else if byte != 0x0A {
                value += [UInt8(ascii: "\\"), byte]
            }
        case .comment:
            if byte == UInt8(ascii: "\\") { state = .commentEscape } else if newline.contains(byte) { state = .preKey }
        case .commentEscape:
            state = .comment
        }
    }
    switch state {
    case .preValue, .value, .valueEscape, .singleQuoted, .doubleQuoted, .doubleQuotedEscape: commit()
    case .preKey, .key, .comment, .commentEscape: break
    }
    return found
}

/// The credential id under which the gateway's unit loads vLLM's key file (`LoadCredential=vllm.env:<env_file>`):
/// systemd copies the file into `$CREDENTIALS_DIRECTORY`, readable by the gateway alone, and the gateway takes only
/// `VLLM_API_KEY` from it. Other secrets vLLM keeps there (`HF_TOKEN`) never enter the gateway's environment.
public let gatewayKeyFileCredential = "vllm.env"

/// vLLM's key for the gateway: `$VLLM_API_KEY` when set and not empty (a run outside systemd, or a drop-in), else the
/// `VLLM_API_KEY` line of the key file loaded as a credential. `readFile` returns a file's text, nil when unreadable.
public func gatewayUpstreamKey(environment: (String) -> String?, readFile: (String) -> String?) -> String? {
    if let key = environment("VLLM_API_KEY"), !key.isEmpty { return key }
    guard let directory = environment("CREDENTIALS_DIRECTORY"), let text = readFile(directory + "/" + gatewayKeyFileCredential) else { return nil }
    return environmentFileValue("VLLM_API_KEY", in: text)
}
