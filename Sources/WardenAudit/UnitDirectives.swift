/// The directives of a unit as `systemctl cat` prints it (the file and its drop-ins, in order).
public struct UnitDirectives: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var section: String
        public var key: String
        public var value: String
    }

    public var entries: [Entry] = []

    public init(text: String) {
        var section = ""
        var pending = ""
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = rawLine.trimmed()
            if pending.isEmpty, line.hasPrefix("#") || line.hasPrefix(";") || line.isEmpty { continue }
            if line.hasSuffix("\\") {
                pending += line.dropLast() + " "
                continue
            }
            let full = pending + line
            pending = ""
            if full.hasPrefix("["), full.hasSuffix("]") {
                section = String(full.dropFirst().dropLast())
            } else if let equals = full.firstIndex(of: "=") {
                entries.append(Entry(section: section, key: full[..<equals].trimmed(), value: full[full.index(after: equals)...].trimmed()))
            }
        }
    }

    /// The effective list of a key: an empty assignment resets it (and stands for "empty" when last).
    public func values(_ key: String, section: String = "Service") -> [String] {
        var values: [String] = []
        for entry in entries where entry.section == section && entry.key == key {
            if entry.value.isEmpty { values = [""] } else if values == [""] { values = [entry.value] } else { values.append(entry.value) }
        }
        return values
    }

    /// The last assignment of a key, which is what systemd uses for single-valued settings.
    public func last(_ key: String, section: String = "Service") -> String? { values(key, section: section).last }
}

/// Seconds from a systemd time span (`30`, `90s`, `5min`, `1min 30s`); `nil` for `infinity` or nonsense.
func timeSpanSeconds(_ text: String) -> Int? {
    let units: [(String, Int)] = [("min", 60), ("ms", 0), ("s", 1), ("m", 60), ("h", 3600)]
    var total = 0
    for word in text.split(separator: " ") {
        let digits = word.prefix { $0.isNumber }
        guard let number = Int(digits) else { return nil }
        let suffix = word.dropFirst(digits.count)
        if suffix.isEmpty { total += number; continue }
        guard let unit = units.first(where: { $0.0 == suffix }) else { return nil }
        total += number * unit.1
    }
    return total
}
