/// One problem found in a deployment file, located by key path and (when known) line and column.
public struct ConfigIssue: Sendable, Equatable, CustomStringConvertible {
    /// Dotted key path such as `vllm.gpu_memory_utilization`; empty for whole-file problems.
    public var path: String
    public var line: Int?
    public var column: Int?
    public var message: String

    public init(path: String, line: Int? = nil, column: Int? = nil, message: String) {
        self.path = path
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String {
        var location = ""
        if let line { location = "line \(line)" + (column.map { ", column \($0)" } ?? "") + ": " }
        let subject = path.isEmpty ? "" : "\(path): "
        return location + subject + message
    }
}

/// A deployment file that cannot be used, with every problem found in one pass.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Where the file was read from.
    public var file: String
    public var issues: [ConfigIssue]

    public init(file: String, issues: [ConfigIssue]) {
        self.file = file
        self.issues = issues
    }

    public var description: String {
        let noun = issues.count == 1 ? "problem" : "problems"
        return "\(file): \(issues.count) \(noun)\n" + issues.map { "  - \($0)" }.joined(separator: "\n")
    }
}

/// Closest candidate within a small edit distance, for "did you mean …" hints.
public func closestMatch(to word: String, in candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
    let tolerance = max(2, word.count / 3)
    return best.1 <= tolerance ? best.0 : nil
}

/// Levenshtein distance (insertions, deletions, substitutions).
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...max(b.count, 1) where !b.isEmpty {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
        }
        previous = current
    }
    return previous[b.count]
}
