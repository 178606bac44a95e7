/// A minimal line diff (longest common subsequence) for `warden install --dry-run`; files here are small.
enum LineDiff {
    /// `-` and `+` lines for what changes, with one line of context around each change.
    static func render(old: String, new: String, context: Int = 1) -> [String] {
        let a = old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let b = new.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var lengths = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                lengths[i][j] = a[i] == b[j] ? lengths[i + 1][j + 1] + 1 : max(lengths[i + 1][j], lengths[i][j + 1])
            }
        }
        var operations: [(Character, String)] = []
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if i < a.count, j < b.count, a[i] == b[j] {
                operations.append((" ", a[i])); i += 1; j += 1
            } else if i < a.count, j == b.count || lengths[i + 1][j] >= lengths[i][j + 1] {
                operations.append(("-", a[i])); i += 1
            } else {
                operations.append(("+", b[j])); j += 1
            }
        }
        let changed = operations.indices.filter { operations[$0].0 != " " }
        return operations.indices.compactMap { index in
            guard changed.contains(where: { abs($0 - index) <= context }) else { return nil }
            return "\(operations[index].0) \(operations[index].1)"
        }
    }
}
