/// A position in the deployment file: 1-based line and column (columns count UTF-8 bytes).
public struct YAMLMark: Sendable, Equatable {
    public var line: Int
    public var column: Int
}

/// A scalar as written: its text, and whether it was quoted (a quoted `'8000'` is a string, never a number).
struct YAMLScalar: Sendable, Equatable {
    var string: String
    var quoted: Bool
    var mark: YAMLMark
}

/// One node of the YAML subset a deployment file uses: block and flow mappings and sequences of scalars.
indirect enum YAMLNode: Sendable {
    case scalar(YAMLScalar)
    case mapping([(key: YAMLNode, value: YAMLNode)], YAMLMark)
    case sequence([YAMLNode], YAMLMark)

    var mark: YAMLMark {
        switch self {
        case .scalar(let scalar): scalar.mark
        case .mapping(_, let mark), .sequence(_, let mark): mark
        }
    }

    var scalar: YAMLScalar? { if case .scalar(let scalar) = self { scalar } else { nil } }

    /// The text of a scalar (keys are scalars).
    var string: String? { scalar?.string }

    private var plain: String? { scalar.flatMap { $0.quoted ? nil : $0.string } }

    /// `~`, `null` or nothing at all: an explicitly empty value.
    var isNull: Bool { plain.map { ["", "~", "null", "Null", "NULL"].contains($0) } ?? false }

    /// YAML 1.1 booleans, as people write them in configuration files.
    var bool: Bool? {
        switch plain {
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": true
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": false
        default: nil
        }
    }

    var int: Int? { plain.flatMap { Int($0.filter { $0 != "_" }) } }

    var float: Double? {
        guard let text = plain, text.first.map({ $0.isNumber || "+-.".contains($0) }) == true else { return nil }
        return Double(text.filter { $0 != "_" })
    }
}

/// A syntax problem, with where it is and what to do.
public struct YAMLError: Error, Sendable, Equatable {
    public var message: String
    public var mark: YAMLMark
}
