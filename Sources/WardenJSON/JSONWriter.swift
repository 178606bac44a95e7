extension JSONValue {
    /// Compact JSON text (no spaces), numbers as their original literals.
    public var serialized: String {
        var output = ""
        write(to: &output)
        return output
    }

    public func write(to output: inout String) {
        switch self {
        case .null: output += "null"
        case .bool(let value): output += value ? "true" : "false"
        case .number(let literal): output += literal
        case .string(let value): output.appendJSONString(value)
        case .array(let values):
            output += "["
            for (offset, value) in values.enumerated() {
                if offset > 0 { output += "," }
                value.write(to: &output)
            }
            output += "]"
        case .object(let members):
            output += "{"
            for (offset, member) in members.enumerated() {
                if offset > 0 { output += "," }
                output.appendJSONString(member.key)
                output += ":"
                member.value.write(to: &output)
            }
            output += "}"
        }
    }
}

extension String {
    /// Appends `value` as a quoted JSON string, escaping what RFC 8259 requires.
    public mutating func appendJSONString(_ value: String) {
        // Fast path: most strings (tokens, names) need no escaping and are appended whole.
        if !value.utf8.contains(where: { $0 == 0x22 || $0 == 0x5C || $0 < 0x20 }) {
            append("\"")
            append(value)
            append("\"")
            return
        }
        var bytes: [UInt8] = []
        bytes.appendJSONString(value)
        append(String(decoding: bytes, as: UTF8.self))
    }
}

extension Array where Element == UInt8 {
    /// Appends `value` as a quoted JSON string in UTF-8, escaping what RFC 8259 requires (for lines built as bytes).
    public mutating func appendJSONString(_ value: String) {
        append(UInt8(ascii: "\""))
        var text = value
        // Ids, addresses and paths rarely need escaping: appended whole when they do not.
        let plain = text.withUTF8 { utf8 in
            guard !utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) else { return false }
            append(contentsOf: utf8)
            return true
        }
        if !plain {
            for byte in value.utf8 {
                switch byte {
                case 0x22, 0x5C:
                    append(0x5C)
                    append(byte)
                case UInt8(ascii: "\n"): append(contentsOf: [0x5C, UInt8(ascii: "n")])
                case UInt8(ascii: "\r"): append(contentsOf: [0x5C, UInt8(ascii: "r")])
                case UInt8(ascii: "\t"): append(contentsOf: [0x5C, UInt8(ascii: "t")])
                case 0..<0x20:
                    append(contentsOf: Array("\\u00".utf8))
                    append(jsonHexDigits[Int(byte >> 4)])
                    append(jsonHexDigits[Int(byte & 0xF)])
                default: append(byte)
                }
            }
        }
        append(UInt8(ascii: "\""))
    }
}

private let jsonHexDigits = Array("0123456789abcdef".utf8)
