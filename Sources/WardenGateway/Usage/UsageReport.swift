import WardenConfig

/// The ledger summed for `warden usage`: one row per day, model or key.
public enum UsageReport {
    public enum Grouping: String, CaseIterable, Sendable {
        case day, model, key
    }

    public struct Row: Sendable, Equatable {
        /// The day (`YYYY-MM-DD`, UTC), the model (`-` for refusals before one was known) or the key id.
        public var group: String
        /// The key's name when grouped by key.
        public var name: String?
        /// Requests answered (refusals not included) and their tokens.
        public var counts = UsageCounts()
        /// Requests the gateway refused, by reason.
        public var refusals: [String: Int] = [:]

        public var refused: Int { refusals.values.reduce(0) { $0.saturatingAdded($1) } }
    }

    /// Refusals by reason over all `rows`. Every sum here saturates: the store may hold anything.
    public static func refusals(_ rows: [Row]) -> [String: Int] {
        rows.reduce(into: [:]) { total, row in total.merge(row.refusals) { $0.saturatingAdded($1) } }
    }

    /// Sums ledger rows by `grouping`; `names` maps key ids to names. Rows come out in order of day, model, or key name.
    public static func build(_ cells: [(UsageCell, UsageCounts)], by grouping: Grouping, names: [String: String]) -> [Row] {
        var rows: [String: Row] = [:]
        for (cell, counts) in cells {
            let group = switch grouping {
            case .day: QuotaCalendar.dateText(cell.hour)
            case .model: cell.model.isEmpty ? "-" : cell.model
            case .key: cell.key
            }
            var row = rows[group] ?? Row(group: group, name: grouping == .key ? names[cell.key] ?? "(deleted key)" : nil)
            if cell.outcome.isEmpty { row.counts.add(counts) } else { row.refusals[cell.outcome, default: 0] = row.refusals[cell.outcome, default: 0].saturatingAdded(counts.requests) }
            rows[group] = row
        }
        return rows.values.sorted { ($0.name ?? $0.group, $0.group) < ($1.name ?? $1.group, $1.group) }
    }
}
