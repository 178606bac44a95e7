import WardenJSON

extension PreflightReport {
    /// One line per check (`STATUS  id  detail`), a hint under each failure and warning, then a summary line.
    public var text: String {
        let width = results.map(\.id.count).max() ?? 0
        var lines: [String] = []
        for result in results {
            let padded = result.id + String(repeating: " ", count: width - result.id.count)
            lines.append("\(result.status.rawValue.uppercased().padding(4))  \(padded)  \(result.detail)")
            if let hint = result.hint, result.status == .fail || result.status == .warn {
                lines.append(String(repeating: " ", count: 8 + width) + "fix: \(hint)")
            }
        }
        let verdict = passed ? "vLLM may start"
            : failedPermanently ? "vLLM would fail: fix the FAIL lines above, then start it again (systemd does not retry this)"
            : "vLLM would fail for now: what failed may clear by itself (systemd retries the start)"
        lines.append("\(count(.pass)) passed, \(count(.fail)) failed, \(count(.warn)) warnings, \(count(.skip)) skipped in \(durationMilliseconds) ms — \(verdict)")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The documented JSON form (schema `warden.preflight/v1`).
    public var json: String {
        let checks: [JSONValue] = results.map { result in
            .object([
                ("id", .string(result.id)),
                ("status", .string(result.status.rawValue)),
                ("detail", .string(result.detail)),
                ("hint", result.hint.map(JSONValue.string) ?? .null),
                ("transient", .bool(result.transient)),
                ("duration_ms", .number(String(result.durationMilliseconds))),
            ])
        }
        let summary: JSONValue = .object(CheckStatus.allCases.map { ($0.rawValue, .number(String(count($0)))) }
            + [("duration_ms", .number(String(durationMilliseconds)))])
        return JSONValue.object([
            ("schema", .string("warden.preflight/v1")),
            ("ok", .bool(passed)),
            ("permanent_failure", .bool(failedPermanently)),
            ("summary", summary),
            ("checks", .array(checks)),
        ]).serialized + "\n"
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}
