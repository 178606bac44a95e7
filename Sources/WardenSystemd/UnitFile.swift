/// A systemd unit as ordered sections of `Key=value` lines, with a comment per line where it helps an operator.
struct UnitFile {
    struct Line {
        var key: String
        var value: String
        var comment: String?
    }

    var header: [String]
    var sections: [(name: String, lines: [Line])] = []

    mutating func section(_ name: String, _ build: (inout [Line]) -> Void) {
        var lines: [Line] = []
        build(&lines)
        sections.append((name, lines))
    }

    var text: String {
        var output = header.map { "# \($0)" }.joined(separator: "\n") + "\n"
        for (name, lines) in sections {
            output += "\n[\(name)]\n"
            for line in lines {
                if let comment = line.comment { output += "# \(comment)\n" }
                // systemd expands specifiers (`%h`, `%n`) in nearly every value, and no value here means one.
                output += "\(line.key)=\(line.value.replacing("%", with: "%%"))\n"
            }
        }
        return output
    }
}

extension Array where Element == UnitFile.Line {
    mutating func add(_ key: String, _ value: String, _ comment: String? = nil) {
        append(UnitFile.Line(key: key, value: value, comment: comment))
    }
}

/// Quotes a value for `Environment=` (systemd's own double-quote syntax; `%` is doubled with every value).
func environmentAssignment(_ name: String, _ value: String) -> String {
    let escaped = value.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"")
    return "\"\(name)=\(escaped)\""
}

/// A path in a space-separated list (`ReadOnlyPaths=`, `ReadWritePaths=`): quoted when it holds white space or a
/// quote, which systemd would otherwise split on.
func unitPath(_ path: String) -> String {
    guard path.contains(where: { $0.isWhitespace || $0 == "\"" || $0 == "\\" }) else { return path }
    return "\"" + path.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\""
}

/// Quotes a word for a POSIX shell script.
func shellQuoted(_ word: String) -> String {
    let safe = word.allSatisfy { $0.isLetter || $0.isNumber || "-_./:=,@%+".contains($0) }
    return safe && !word.isEmpty ? word : "'" + word.replacing("'", with: "'\\''") + "'"
}

import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
