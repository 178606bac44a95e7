import WardenJSON

extension AuditReport {
    /// Findings grouped by severity, worst first: `HIGH  id  title`, then evidence, fix and the Warden command.
    public var text: String {
        var lines = ["vLLM: " + summary.joined(separator: ", "), "advisory table: \(advisoryTableDate) (\(AdvisoryTable.entries.count) advisories)", ""]
        for severity in Severity.allCases.reversed() {
            for finding in findings where finding.severity == severity {
                lines.append("\(severity.rawValue.uppercased().padding(toLength: 8))\(finding.id)  \(finding.title)")
                lines += finding.evidence.map { "        " + $0 }
                lines.append("        fix: \(finding.fix)")
                if let command = finding.wardenFix { lines.append("        warden: \(command)") }
                lines.append("")
            }
        }
        let counts = Severity.allCases.reversed().map { severity in "\(findings.filter { $0.severity == severity }.count) \(severity.rawValue)" }
        lines.append(findings.isEmpty ? "no findings" : "\(findings.count) finding(s): " + counts.joined(separator: ", "))
        return lines.joined(separator: "\n") + "\n"
    }

    /// What was found, in words.
    var summary: [String] {
        if let probedOnly { return ["not on this host; probed over HTTP at \(probedOnly)"] }
        var parts: [String] = []
        if let unit = target.unit { parts.append("unit \(unit)") }
        if let pid = target.pid { parts.append("pid \(pid)") } else if let source = target.invocationSource { parts.append("command line from \(source)") }
        parts.append("version \(target.version ?? "unknown")")
        parts.append("listening on " + (target.apiSockets.isEmpty ? "nothing seen" : target.apiSockets.map(\.description).joined(separator: " ")))
        return parts
    }

    /// `{"vllm": {...}, "advisory_table_date": "...", "findings": [...]}`.
    public var json: String {
        let vllm: JSONValue = .object([
            ("unit", target.unit.map(JSONValue.string) ?? .null),
            ("pid", target.pid.map { .number(String($0)) } ?? .null),
            ("command_line_source", target.invocationSource.map(JSONValue.string) ?? .null),
            ("version", target.version.map(JSONValue.string) ?? .null),
            ("listen", .array(target.apiSockets.map { .string($0.description) })),
            ("probed_only", probedOnly.map(JSONValue.string) ?? .null),
        ])
        let items: [JSONValue] = findings.map { finding in
            var fields: [(String, JSONValue)] = [
                ("id", .string(finding.id)), ("severity", .string(finding.severity.rawValue)), ("title", .string(finding.title)),
                ("evidence", .array(finding.evidence.map(JSONValue.string))), ("fix", .string(finding.fix)),
            ]
            if let command = finding.wardenFix { fields.append(("warden_fix", .string(command))) }
            return .object(fields)
        }
        return JSONValue.object([("vllm", vllm), ("advisory_table_date", .string(advisoryTableDate)), ("findings", .array(items))]).serialized + "\n"
    }
}

extension String {
    func padding(toLength length: Int) -> String { count >= length ? self + " " : self + String(repeating: " ", count: length - count) }
}
