import WardenJSON

/// Writes a JSON document as block YAML, the form `warden config example` uses: nested sections indented by two,
/// lists one item a line, strings quoted only where YAML would read them as something else.
enum YAMLWriter {
    static func document(_ value: JSONValue) -> String {
        guard case .object(let members) = value else { return scalar(value) + "\n" }
        var lines: [String] = []
        write(members, indent: 0, into: &lines)
        return lines.joined(separator: "\n") + "\n"
    }

    private static func write(_ members: [(key: String, value: JSONValue)], indent: Int, into lines: inout [String]) {
        let pad = String(repeating: " ", count: indent)
        for (key, value) in members {
            switch value {
            case .object(let nested) where !nested.isEmpty:
                lines.append("\(pad)\(string(key)):")
                write(nested, indent: indent + 2, into: &lines)
            case .array(let items) where !items.isEmpty:
                lines.append("\(pad)\(string(key)):")
                for item in items { lines.append("\(pad)  - \(scalar(item))") }
            default:
                lines.append("\(pad)\(string(key)): \(scalar(value))")
            }
        }
    }

    private static func scalar(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool(let flag): flag ? "true" : "false"
        case .number(let literal): literal
        case .string(let text): string(text)
        case .array(let items): "[" + items.map(scalar).joined(separator: ", ") + "]"
        case .object(let members): "{" + members.map { "\(string($0.key)): \(scalar($0.value))" }.joined(separator: ", ") + "}"
        }
    }

    /// Plain when the parser reads it back as the same string, else double-quoted.
    static func string(_ text: String) -> String {
        let node = YAMLNode.scalar(YAMLScalar(string: text, quoted: false, mark: YAMLMark(line: 0, column: 0)))
        let ambiguous = node.isNull || node.bool != nil || node.int != nil || node.float != nil
        let indicator = text.first.map { "-?:,[]{}#&*!|>'\"%@` ".contains($0) } ?? true
        let special = text.contains(": ") || text.contains(" #") || text.hasSuffix(" ") || text.hasSuffix(":")
            || text.unicodeScalars.contains { $0.value < 0x20 || $0 == "\u{7F}" }
        // `::1/128` and the like are plain in YAML (a colon not followed by a space is no indicator).
        let colonValue = text.hasPrefix(":") && text.count > 1 && !text.hasPrefix(": ")
        guard ambiguous || (indicator && !colonValue) || special else { return text }
        var quoted = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\t": quoted += "\\t"
            case "\r": quoted += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16)
                    quoted += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    quoted.unicodeScalars.append(scalar)
                }
            }
        }
        return quoted + "\""
    }
}
