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
            return YAMLWriter.document(try JSONValue.parse(json))
        }
    }
}
