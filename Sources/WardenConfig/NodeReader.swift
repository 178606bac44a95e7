
/// Collects every problem found while reading one file, so they are all reported at once.
final class IssueCollector {
    private(set) var issues: [ConfigIssue] = []

    func report(_ path: String, _ node: YAMLNode?, _ message: String) {
        issues.append(ConfigIssue(path: path, line: node?.mark.line, column: node?.mark.column, message: message))
    }
}

/// Reads one YAML mapping against a fixed set of keys: typed accessors report wrong types and out-of-range values,
/// and `finish()` reports every key nobody asked for (a typo must never be silently ignored).
final class MappingReader {
    let path: String
    private let entries: [(key: YAMLNode, value: YAMLNode)]
    private let issues: IssueCollector
    private var known: [String] = []

    init(_ mapping: [(key: YAMLNode, value: YAMLNode)], path: String, issues: IssueCollector) {
        self.entries = mapping
        self.path = path
        self.issues = issues
    }

    /// Reads `key` when it is present; `nil` when absent or explicitly null.
    func value(_ key: String) -> YAMLNode? {
        known.append(key)
        guard let node = entries.first(where: { $0.key.string == key })?.value, !node.isNull else { return nil }
        return node
    }

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func string(_ key: String) -> String? {
        guard let node = value(key) else { return nil }
        guard case .scalar(let scalar) = node else {
            issues.report(keyPath(key), node, "expected a string, found \(kind(of: node))")
            return nil
        }
        return printable(scalar.string, keyPath(key), node)
    }

    /// `text` when it holds no control character. Values end up in systemd units, which are line-based: a line
    /// break in a path or an argument would start a directive of its own (`ExecStartPre=…` injected from a
    /// model name), and a tab or NUL would split or cut it where systemd reads it.
    private func printable(_ text: String, _ path: String, _ node: YAMLNode) -> String? {
        guard let control = text.firstControlCharacter else { return text }
        let name = switch control.value {
        case 0x0A, 0x0D: "a line break"
        case 0x09: "a tab"
        default: "the control character \\u{\(String(control.value, radix: 16))}"
        }
        issues.report(path, node, "contains \(name); values are written into systemd units line by line: remove line breaks, "
                      + "tabs and other control characters")
        return nil
    }

    func bool(_ key: String) -> Bool? {
        guard let node = value(key) else { return nil }
        guard let result = node.bool else {
            issues.report(keyPath(key), node, "expected true or false, found \(describe(node))")
            return nil
        }
        return result
    }

    func int(_ key: String, in range: ClosedRange<Int>) -> Int? {
        guard let node = value(key) else { return nil }
        guard let number = node.int else {
            issues.report(keyPath(key), node, "expected a whole number from \(range.lowerBound) to \(range.upperBound), found \(describe(node))")
            return nil
        }
        return inRange(number, range, key, node)
    }

    func double(_ key: String, in range: ClosedRange<Double>) -> Double? {
        guard let node = value(key) else { return nil }
        guard let number = node.float else {
            issues.report(keyPath(key), node, "expected a number from \(range.lowerBound) to \(range.upperBound), found \(describe(node))")
            return nil
        }
        return inRange(number, range, key, node)
    }

    /// Seconds, written as a number or with a unit: `90`, `30s`, `10m`, `2h`, `7d`.
    func seconds(_ key: String, in range: ClosedRange<Int>) -> Int? {
        guard let node = value(key) else { return nil }
        guard let text = node.scalar?.string, let seconds = parseDuration(text) else {
            issues.report(keyPath(key), node, "expected a duration such as 30, 30s, 10m, 2h or 1d (from \(range.lowerBound) to \(range.upperBound) seconds), found \(describe(node))")
            return nil
        }
        return inRange(seconds, range, key, node)
    }

    func strings(_ key: String) -> [String]? {
        guard let node = value(key) else { return nil }
        guard case .sequence(let sequence, _) = node else {
            issues.report(keyPath(key), node, "expected a list of strings, found \(kind(of: node))")
            return nil
        }
        var result: [String] = []
        for (index, item) in sequence.enumerated() {
            guard case .scalar(let scalar) = item else {
                issues.report("\(keyPath(key))[\(index)]", item, "expected a string, found \(kind(of: item))")
                continue
            }
            if let text = printable(scalar.string, "\(keyPath(key))[\(index)]", item) { result.append(text) }
        }
        return result
    }

    func stringMap(_ key: String) -> [String: String]? {
        guard let node = value(key) else { return nil }
        guard case .mapping(let mapping, _) = node else {
            issues.report(keyPath(key), node, "expected a mapping of names to strings, found \(kind(of: node))")
            return nil
        }
        var result: [String: String] = [:]
        for (name, item) in mapping {
            guard let nameText = name.string, case .scalar(let scalar) = item else {
                issues.report("\(keyPath(key)).\(name.string ?? "?")", item, "expected a string value, found \(kind(of: item))")
                continue
            }
            let path = "\(keyPath(key)).\(nameText)"
            if let name = printable(nameText, path, name), let text = printable(scalar.string, path, item) { result[name] = text }
        }
        return result
    }

    /// A nested section; a missing section reads as an empty one so its defaults apply.
    func section(_ key: String) -> MappingReader? {
        guard let node = value(key) else { return nil }
        guard case .mapping(let mapping, _) = node else {
            issues.report(keyPath(key), node, "expected a section (a mapping of keys), found \(kind(of: node))")
            return nil
        }
        return MappingReader(mapping, path: keyPath(key), issues: issues)
    }

    /// Reports a problem with a value this reader already returned.
    func report(_ key: String, _ message: String) {
        issues.report(keyPath(key), entries.first(where: { $0.key.string == key })?.value, message)
    }

    /// Reports a problem with item `index` of the list under `key`, at that item's line and column.
    func reportItem(_ key: String, _ index: Int, _ message: String) {
        var node: YAMLNode?
        if case .sequence(let items, _)? = entries.first(where: { $0.key.string == key })?.value, items.indices.contains(index) {
            node = items[index]
        }
        issues.report("\(keyPath(key))[\(index)]", node, message)
    }

    /// Reports every key that no accessor asked for, with a suggestion when one is close.
    func finish() {
        for (key, _) in entries {
            let name = key.string ?? "?"
            guard !known.contains(name) else { continue }
            var message = "unknown key"
            // No key is long: a long one is neither compared letter by letter (that takes time in its length
            // squared) nor echoed whole.
            let isLong = name.utf8.count > 64
            if !isLong, let suggestion = closestMatch(to: name, in: known) {
                message += "; did you mean '\(suggestion)'?"
            } else {
                message += "; known keys here: \(known.joined(separator: ", "))"
            }
            issues.report(keyPath(isLong ? String(name.prefix(40)) + "…" : name), key, message)
        }
    }

    private func inRange<T: Comparable>(_ value: T, _ range: ClosedRange<T>, _ key: String, _ node: YAMLNode) -> T? {
        guard range.contains(value) else {
            issues.report(keyPath(key), node, "\(value) is out of range; allowed: \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return value
    }
}

func kind(of node: YAMLNode) -> String {
    switch node {
    case .scalar(let scalar): return "'\(scalar.string)'"
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    }
}

private func describe(_ node: YAMLNode) -> String { kind(of: node) }

/// Parses `90`, `30s`, `10m`, `2h`, `1d` into seconds; `nil` for anything else (negative numbers included).
func parseDuration(_ text: String) -> Int? {
    let trimmed = text.filter { $0 != " " }
    let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
    if let last = trimmed.last, let multiplier = units[last] {
        guard let value = Int(trimmed.dropLast()) else { return nil }
        return value * multiplier
    }
    return Int(trimmed)
}
