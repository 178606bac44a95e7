/// How bad a finding is; `--fail-on` compares against it.
public enum Severity: String, Sendable, CaseIterable, Comparable, Codable {
    case info, low, medium, high, critical

    private var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (lhs: Severity, rhs: Severity) -> Bool { lhs.rank < rhs.rank }
}

/// One thing wrong (or worth knowing) about the running vLLM, with what shows it and how to fix it.
public struct Finding: Sendable, Equatable {
    /// Stable id, `area.name` (`secrets.cmdline-key`); scripts and tests match on it.
    public var id: String
    public var severity: Severity
    /// One line: what is wrong.
    public var title: String
    /// What was observed (paths, values with secrets masked, probe results).
    public var evidence: [String]
    /// How to fix it by hand.
    public var fix: String
    /// The Warden command that fixes it, where one does.
    public var wardenFix: String?

    public init(_ id: String, _ severity: Severity, _ title: String, evidence: [String], fix: String, wardenFix: String? = nil) {
        self.id = id
        self.severity = severity
        self.title = title
        self.evidence = evidence
        self.fix = fix
        self.wardenFix = wardenFix
    }
}

/// Shows enough of a secret to recognise it, never enough to use it.
func masked(_ secret: String) -> String {
    secret.count <= 8 ? "<\(secret.count) characters>" : "\(secret.prefix(4))…<\(secret.count) characters>"
}
