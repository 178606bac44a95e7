import Foundation
import Yams

extension Deployment {
    /// Output formats of `warden config show`.
    public enum RenderFormat: String, Sendable, CaseIterable {
        case yaml, json
    }

    /// The effective configuration, defaults filled in.
    public func rendered(as format: RenderFormat) throws -> String {
        switch format {
        case .yaml:
            return try YAMLEncoder().encode(self)
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
        }
    }
}
