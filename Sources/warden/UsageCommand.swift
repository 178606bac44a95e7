import ArgumentParser
import FoundationEssentials
import WardenConfig
import WardenGateway
import WardenJSON

/// `warden usage`: what each key used, from the gateway's usage ledger in the key store.
struct UsageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage",
        abstract: "Show requests, refusals and tokens per day, model or key (from the gateway's usage ledger).",
        discussion: "The running gateway writes its counts once a second; a crash loses at most that second."
    )
    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json, csv
    }

    @OptionGroup var options: ConfigOptions
    @Option(help: ArgumentHelp("Only this key (its id or its name).", valueName: "id|name")) var key: String?
    @Option(help: ArgumentHelp("From this day on (YYYY-MM-DD, UTC; default: the first of this month).", valueName: "date")) var since: String?
    @Option(help: "Group by day, model or key.") var by: UsageReport.Grouping = .key
    @Option(help: "text, json or csv.") var format: Format = .text

    func validate() throws {
        if let since, QuotaCalendar.parseDate(since) == nil { throw ValidationError("--since '\(since)' must be a date like 2027-01-31") }
    }

    func run() async throws {
        let start = since.flatMap(QuotaCalendar.parseDate)
            ?? QuotaCalendar().bounds(of: .month, at: Int64(Date().timeIntervalSince1970)).start
        let store = try KeysCommand.openStore(options, access: .readOnly)
        let keys = try store.list()
        var keyID: String?
        if let key {
            guard let match = keys.first(where: { $0.publicID == key }) ?? keys.first(where: { $0.name == key }) else {
                printError("usage: no key with the id or name '\(key)'; `warden keys list` shows them")
                throw ExitCode(WardenExit.usage)
            }
            keyID = match.publicID
        }
        let names = Dictionary(keys.map { ($0.publicID, $0.name) }, uniquingKeysWith: { first, _ in first })
        let rows = UsageReport.build(try store.usage(since: start, key: keyID), by: by, names: names)
        switch format {
        case .text: printText(rows, since: start)
        case .json: print(json(rows, since: start).serialized)
        case .csv: printCSV(rows)
        }
    }

    private var columns: [String] { by == .key ? ["key", "name"] : [by.rawValue] }

    private func printText(_ rows: [UsageReport.Row], since start: Int64) {
        guard !rows.isEmpty else {
            print("no usage since \(QuotaCalendar.dateText(start))")
            return
        }
        var table = [columns.map { $0.uppercased() } + ["REQUESTS", "REFUSED", "PROMPT", "COMPLETION", "CHARGED"]]
        for row in rows {
            table.append([row.group] + (row.name.map { [$0] } ?? []) + [row.counts.requests, row.refused, row.counts.promptTokens,
                                                                         row.counts.completionTokens, row.counts.chargedTokens].map(String.init))
        }
        let widths = table[0].indices.map { column in table.map { $0[column].count }.max() ?? 0 }
        for line in table {
            print(zip(line, widths).map { $0.padded($1) }.joined(separator: "  ").trimmingTrailingSpaces())
        }
        let refusals = UsageReport.refusals(rows)
        if !refusals.isEmpty {
            print("refused by reason: " + refusals.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
    }

    private func json(_ rows: [UsageReport.Row], since start: Int64) -> JSONValue {
        func number(_ value: Int) -> JSONValue { .number(String(value)) }
        return .object([
            ("since", .string(QuotaCalendar.dateText(start))), ("by", .string(by.rawValue)),
            ("rows", .array(rows.map { row in
                .object([(by.rawValue, .string(row.group))] + (row.name.map { [("name", JSONValue.string($0))] } ?? []) + [
                    ("requests", number(row.counts.requests)), ("refused", number(row.refused)),
                    ("refusals", .object(row.refusals.sorted { $0.key < $1.key }.map { ($0.key, number($0.value)) })),
                    ("prompt_tokens", number(row.counts.promptTokens)), ("completion_tokens", number(row.counts.completionTokens)),
                    ("charged_tokens", number(row.counts.chargedTokens)),
                ])
            })),
        ])
    }

    private func printCSV(_ rows: [UsageReport.Row]) {
        print((columns + ["requests", "refused", "prompt_tokens", "completion_tokens", "charged_tokens"]).joined(separator: ","))
        for row in rows {
            let fields = [row.group] + (row.name.map { [$0] } ?? []) + [row.counts.requests, row.refused, row.counts.promptTokens,
                                                                         row.counts.completionTokens, row.counts.chargedTokens].map(String.init)
            print(fields.map(csvField).joined(separator: ","))
        }
    }

    /// RFC 4180: a field holding a comma, quote or line break is quoted, its quotes doubled.
    private func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacing("\"", with: "\"\"") + "\""
    }
}

extension UsageReport.Grouping: ExpressibleByArgument {}

extension String {
    func trimmingTrailingSpaces() -> String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
