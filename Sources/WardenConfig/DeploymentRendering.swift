import FoundationEssentials
import WardenJSON

extension Deployment {
    /// Output formats of `warden config show`.
    public enum RenderFormat: String, Sendable, CaseIterable {
        case yaml, json
    }

    /// The effective configuration, defaults filled in.
    public func rendered(as format: RenderFormat) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let json = try encoder.encode(self)
        switch format {
        case .json:
            return String(decoding: json, as: UTF8.self) + "\n"
        case .yaml:
            return YAMLWriter.document(Self.humanDurations(try JSONValue.parse(json)))
        }
    }

    /// Keys whose values are durations: written as the example writes them (`30s`, `10m`, `1h`, `7d`).
    static let durationKeys: Set<String> = ["shutdown_timeout", "drain_timeout", "write_timeout", "lease_timeout", "find_time", "ban_time",
                                            "max_ban_time"]

    private static func humanDurations(_ value: JSONValue, key: String = "") -> JSONValue {
        switch value {
        case .object(let members): return .object(members.map { ($0.key, humanDurations($0.value, key: $0.key)) })
        case .number(let literal) where durationKeys.contains(key): return Int(literal).map { .string(formatDuration($0)) } ?? value
        default: return value
        }
    }

    /// The largest unit that divides the seconds exactly; seconds below two minutes.
    static func formatDuration(_ seconds: Int) -> String {
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] where seconds >= 120 && seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }
}
