/// Reads the YAML a deployment file is written in: block and flow mappings and sequences, plain and quoted
/// scalars, comments. Anchors, tags and block scalars (`|`, `>`) are refused with a clear message rather than
/// half-supported; tabs in indentation are named as the problem. Every node carries its line and column.
struct YAMLParser {
    private let bytes: [UInt8]
    private var position = 0
    private var line = 1
    private var lineStart = 0
    /// Collections open around the current position: parsing recurses into each, so the depth is bounded.
    private var depth = 0
    /// Far deeper than any deployment file (it uses four levels); a file nested thousands deep would exhaust the stack.
    static let maxDepth = 64

    init(_ text: String) {
        bytes = Array(text.utf8)
    }

    /// The document's root node, or `nil` for an empty document.
    static func parse(_ text: String) throws(YAMLError) -> YAMLNode? {
        var parser = YAMLParser(text)
        return try parser.document()
    }

    // MARK: - Lines and positions

    private var mark: YAMLMark { YAMLMark(line: line, column: position - lineStart + 1) }
    private var atEnd: Bool { position >= bytes.count }
    private var current: UInt8? { atEnd ? nil : bytes[position] }
    private func byte(at offset: Int) -> UInt8? { position + offset < bytes.count ? bytes[position + offset] : nil }

    private func error(_ message: String, at mark: YAMLMark? = nil) -> YAMLError {
        YAMLError(message: message, mark: mark ?? self.mark)
    }

    private mutating func advance() {
        if bytes[position] == UInt8(ascii: "\n") {
            line += 1
            lineStart = position + 1
        }
        position += 1
    }

    private mutating func skipSpaces() {
        while current == UInt8(ascii: " ") { advance() }
    }

    /// At the end of the line's content: a newline, the end, or a comment.
    private var atLineEnd: Bool {
        switch current {
        case nil, UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "#"): true
        default: false
        }
    }

    private mutating func skipToNextLine() {
        while let byte = current, byte != UInt8(ascii: "\n") { advance() }
        if current != nil { advance() }
    }

    /// Moves to the first content of the next line that has any (blank and comment lines skipped) and returns
    /// its indentation, or `nil` at the end. Tabs in indentation are an error, not a guess.
    private mutating func nextContentLine() throws(YAMLError) -> Int? {
        while !atEnd {
            var indent = 0
            while let byte = byte(at: indent), byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                if byte == UInt8(ascii: "\t") {
                    throw error("tabs are not allowed in YAML indentation; indent with spaces",
                                at: YAMLMark(line: line, column: position - lineStart + indent + 1))
                }
                indent += 1
            }
            switch byte(at: indent) {
            case nil: position = bytes.count
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "#"): skipToNextLine()
            default:
                for _ in 0..<indent { advance() }
                return indent
            }
        }
        return nil
    }

    /// After a value: only spaces and a comment may follow on its line.
    private mutating func finishLine() throws(YAMLError) {
        skipSpaces()
        if current == UInt8(ascii: "\r") { advance() }
        guard atLineEnd else { throw error("unexpected text after the value; quote the value if it contains ': ' or ' #'") }
        skipToNextLine()
    }

    // MARK: - Block structure

    private mutating func document() throws(YAMLError) -> YAMLNode? {
        guard var indent = try nextContentLine() else { return nil }
        if startsWith("---") {
            skipToNextLine()
            guard let next = try nextContentLine() else { return nil }
            indent = next
        }
        let root = try block(indent: indent)
        if let extra = try nextContentLine(), !startsWith("...") {
            throw error(extra == 0 ? "unexpected content at the top level" : "unexpected indentation")
        }
        return root
    }

    private func startsWith(_ text: String) -> Bool {
        let needle = Array(text.utf8)
        return position + needle.count <= bytes.count && Array(bytes[position..<position + needle.count]) == needle
    }

    /// Steps into a collection; leave it with `depth -= 1`.
    private mutating func enterCollection() throws(YAMLError) {
        depth += 1
        guard depth <= Self.maxDepth else {
            throw error("nested more than \(Self.maxDepth) levels deep; a deployment file needs a handful: flatten the structure")
        }
    }

    /// The node starting at the current position, whose column is `indent`.
    private mutating func block(indent: Int) throws(YAMLError) -> YAMLNode {
        if isSequenceEntry { return try blockSequence(indent: indent) }
        if try lineHoldsKey() { return try blockMapping(indent: indent) }
        let node = try node(inFlow: false)
        try finishLine()
        return node
    }

    private var isSequenceEntry: Bool {
        current == UInt8(ascii: "-") && (byte(at: 1) == nil || [UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r")].contains(byte(at: 1)!))
    }

    /// Whether the content at the current position is `key: …` (looked ahead without consuming).
    private mutating func lineHoldsKey() throws(YAMLError) -> Bool {
        let saved = (position, line, lineStart)
        defer { (position, line, lineStart) = saved }
        guard current != UInt8(ascii: "{"), current != UInt8(ascii: "[") else { return false }
        _ = try scalar(inFlow: false, asKey: true)
        skipSpaces()
        return current == UInt8(ascii: ":") && isValueSeparator(byte(at: 1))
    }

    private func isValueSeparator(_ byte: UInt8?) -> Bool {
        byte == nil || byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
    }

    private mutating func blockMapping(indent: Int) throws(YAMLError) -> YAMLNode {
        try enterCollection()
        defer { depth -= 1 }
        let start = mark
        var entries: [(key: YAMLNode, value: YAMLNode)] = []
        while true {
            let key = try scalar(inFlow: false, asKey: true)
            skipSpaces()
            guard current == UInt8(ascii: ":") else { throw error("expected ':' after the key '\(key.string)'") }
            advance()
            if entries.contains(where: { $0.key.string == key.string }) {
                throw error("duplicate key '\(key.string)'", at: key.mark)
            }
            skipSpaces()
            let value: YAMLNode
            if atLineEnd {
                skipToNextLine()
                let saved = (position, line, lineStart)
                let next = try nextContentLine()
                if let next, next > indent || (next == indent && isSequenceEntry) {
                    value = try block(indent: next)
                } else {
                    (position, line, lineStart) = saved
                    value = .scalar(YAMLScalar(string: "", quoted: false, mark: key.mark))
                }
            } else {
                value = try node(inFlow: false)
                try finishLine()
            }
            entries.append((.scalar(key), value))
            let saved = (position, line, lineStart)
            guard let next = try nextContentLine() else { break }
            if next < indent {
                (position, line, lineStart) = saved
                break
            }
            guard next == indent, !isSequenceEntry else { throw error("unexpected indentation (this block's keys start at column \(indent + 1))") }
        }
        return .mapping(entries, start)
    }

    private mutating func blockSequence(indent: Int) throws(YAMLError) -> YAMLNode {
        try enterCollection()
        defer { depth -= 1 }
        let start = mark
        var items: [YAMLNode] = []
        while true {
            advance()  // the dash
            skipSpaces()
            if atLineEnd {
                skipToNextLine()
                let saved = (position, line, lineStart)
                if let next = try nextContentLine(), next > indent {
                    items.append(try block(indent: next))
                } else {
                    (position, line, lineStart) = saved
                    items.append(.scalar(YAMLScalar(string: "", quoted: false, mark: mark)))
                }
            } else {
                // `- key: value` starts a mapping whose keys line up with this one's.
                items.append(try block(indent: position - lineStart))
            }
            let saved = (position, line, lineStart)
            guard let next = try nextContentLine() else { break }
            if next < indent || (next == indent && !isSequenceEntry) {
                (position, line, lineStart) = saved
                break
            }
            guard next == indent else { throw error("unexpected indentation (this list's items start at column \(indent + 1))") }
        }
        return .sequence(items, start)
    }

    // MARK: - Values on one line (flow collections may span lines)

    /// A flow collection, or a scalar that ends at the line (block) or at `,` `]` `}` (flow).
    private mutating func node(inFlow: Bool) throws(YAMLError) -> YAMLNode {
        switch current {
        case UInt8(ascii: "{"): return try flowMapping()
        case UInt8(ascii: "["): return try flowSequence()
        default: return .scalar(try scalar(inFlow: inFlow, asKey: false))
        }
    }

    private mutating func skipFlowSpace() throws(YAMLError) {
        while let byte = current {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): advance()
            case UInt8(ascii: "#"): skipToNextLine()
            default: return
            }
        }
    }

    private mutating func flowMapping() throws(YAMLError) -> YAMLNode {
        try enterCollection()
        defer { depth -= 1 }
        let start = mark
        advance()
        var entries: [(key: YAMLNode, value: YAMLNode)] = []
        while true {
            try skipFlowSpace()
            guard let byte = current else { throw error("unclosed '{' (opened at line \(start.line), column \(start.column))", at: start) }
            if byte == UInt8(ascii: "}") { advance(); break }
            let key = try scalar(inFlow: true, asKey: true)
            try skipFlowSpace()
            var value = YAMLNode.scalar(YAMLScalar(string: "", quoted: false, mark: key.mark))
            if current == UInt8(ascii: ":") {
                advance()
                try skipFlowSpace()
                if current != UInt8(ascii: ","), current != UInt8(ascii: "}") { value = try node(inFlow: true) }
            }
            if entries.contains(where: { $0.key.string == key.string }) { throw error("duplicate key '\(key.string)'", at: key.mark) }
            entries.append((.scalar(key), value))
            try skipFlowSpace()
            if current == UInt8(ascii: ",") { advance(); continue }
            guard current != nil else { throw error("unclosed '{' (opened at line \(start.line), column \(start.column))", at: start) }
            guard current == UInt8(ascii: "}") else { throw error("expected ',' or '}' in the mapping opened at line \(start.line)") }
        }
        return .mapping(entries, start)
    }

    private mutating func flowSequence() throws(YAMLError) -> YAMLNode {
        try enterCollection()
        defer { depth -= 1 }
        let start = mark
        advance()
        var items: [YAMLNode] = []
        while true {
            try skipFlowSpace()
            guard let byte = current else { throw error("unclosed '[' (opened at line \(start.line), column \(start.column))", at: start) }
            if byte == UInt8(ascii: "]") { advance(); break }
            items.append(try node(inFlow: true))
            try skipFlowSpace()
            if current == UInt8(ascii: ",") { advance(); continue }
            guard current != nil else { throw error("unclosed '[' (opened at line \(start.line), column \(start.column))", at: start) }
            guard current == UInt8(ascii: "]") else { throw error("expected ',' or ']' in the list opened at line \(start.line)") }
        }
        return .sequence(items, start)
    }

    // MARK: - Scalars

    private mutating func scalar(inFlow: Bool, asKey: Bool) throws(YAMLError) -> YAMLScalar {
        let start = mark
        switch current {
        case UInt8(ascii: "\""): return YAMLScalar(string: try doubleQuoted(), quoted: true, mark: start)
        case UInt8(ascii: "'"): return YAMLScalar(string: try singleQuoted(), quoted: true, mark: start)
        case UInt8(ascii: "|"), UInt8(ascii: ">"):
            throw error("block scalars ('|' and '>') are not supported in a deployment file; write the value on one line, quoted if needed")
        case UInt8(ascii: "&"), UInt8(ascii: "*"), UInt8(ascii: "!"):
            throw error("anchors, aliases and tags are not supported in a deployment file; write the value out")
        case UInt8(ascii: "@"), UInt8(ascii: "`"), UInt8(ascii: "%"):
            throw error("a value cannot start with '\(Character(UnicodeScalar(current!)))'; quote it")
        default: break
        }
        var end = position
        var scan = position
        while scan < bytes.count {
            let byte = bytes[scan]
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") { break }
            if byte == UInt8(ascii: "#"), scan > position, bytes[scan - 1] == UInt8(ascii: " ") { break }
            if byte == UInt8(ascii: ":"), scan + 1 >= bytes.count || [UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r")].contains(bytes[scan + 1])
                || (inFlow && [UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]")].contains(bytes[scan + 1])) {
                if asKey || inFlow { break }
                throw error("a plain value cannot contain ': '; quote it", at: YAMLMark(line: line, column: scan - lineStart + 1))
            }
            if inFlow, [UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), UInt8(ascii: "{"), UInt8(ascii: "[")].contains(byte) { break }
            scan += 1
            if byte != UInt8(ascii: " ") { end = scan }
        }
        let text = String(decoding: bytes[position..<end], as: UTF8.self)
        while position < scan { advance() }
        return YAMLScalar(string: text, quoted: false, mark: start)
    }

    private mutating func singleQuoted() throws(YAMLError) -> String {
        let start = mark
        advance()
        var text: [UInt8] = []
        while true {
            guard let byte = current, byte != UInt8(ascii: "\n") else { throw error("unclosed quote (opened at column \(start.column))", at: start) }
            advance()
            if byte == UInt8(ascii: "'") {
                guard current == UInt8(ascii: "'") else { break }
                advance()
            }
            text.append(byte)
        }
        return String(decoding: text, as: UTF8.self)
    }

    private mutating func doubleQuoted() throws(YAMLError) -> String {
        let start = mark
        advance()
        var text: [UInt8] = []
        while true {
            guard let byte = current, byte != UInt8(ascii: "\n") else { throw error("unclosed quote (opened at column \(start.column))", at: start) }
            advance()
            if byte == UInt8(ascii: "\"") { break }
            guard byte == UInt8(ascii: "\\") else {
                text.append(byte)
                continue
            }
            guard let escaped = current else { throw error("unclosed quote", at: start) }
            advance()
            switch escaped {
            case UInt8(ascii: "n"): text.append(UInt8(ascii: "\n"))
            case UInt8(ascii: "t"): text.append(UInt8(ascii: "\t"))
            case UInt8(ascii: "r"): text.append(UInt8(ascii: "\r"))
            case UInt8(ascii: "0"): text.append(0)
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(escaped)
            case UInt8(ascii: "u"):
                var value: UInt32 = 0
                for _ in 0..<4 {
                    guard let digit = current, let nibble = hexValue(digit) else { throw error("\\u needs four hex digits") }
                    value = value << 4 | nibble
                    advance()
                }
                guard let scalar = Unicode.Scalar(value) else { throw error("\\u\(String(value, radix: 16)) is not a character") }
                text.append(contentsOf: Array(String(Character(scalar)).utf8))
            default: throw error("unknown escape '\\\(Character(UnicodeScalar(escaped)))' in a double-quoted value")
            }
        }
        return String(decoding: text, as: UTF8.self)
    }

    private func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
