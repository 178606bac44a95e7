/// A JSON document that keeps object key order and number literals exactly as written, so a body can be read,
/// amended (say, `stream_options` injected) and written back without reformatting what the client sent.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's literal text as it appeared (`1`, `0.5`, `1e3`).
    case number(String)
    case string(String)
    case array([JSONValue])
    /// Members in document order; a duplicate key keeps both entries, and lookups see the last (as Python does).
    case object([(key: String, value: JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.number(a), .number(b)): return a == b || Double(a) == Double(b)
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)): return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// The member named `key` of an object (the last one when repeated); `nil` otherwise.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        // Lengths first: a string comparison that fails costs a runtime call, a length comparison two loads.
        let length = key.utf8.count
        return members.last(where: { $0.key.utf8.count == length && $0.key == key })?.value
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The value as an integer when it is a number without a fractional part (`3`, `3.0`, `1e2`).
    public var intValue: Int? {
        guard case .number(let literal) = self else { return nil }
        if let exact = Int(literal) { return exact }
        guard let double = Double(literal), double.rounded() == double, abs(double) < 9.0e18 else { return nil }
        return Int(double)
    }

    public var doubleValue: Double? {
        if case .number(let literal) = self { return Double(literal) }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    public var objectValue: [(key: String, value: JSONValue)]? {
        if case .object(let members) = self { return members }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// A short name of the value's type for error messages ("a string", "an object", …).
    public var typeDescription: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// Returns an object with `key` set to `value`, replacing every existing member of that name in place
    /// (or appending it), so the rest of the document keeps its order.
    public func setting(_ key: String, to value: JSONValue) -> JSONValue {
        guard case .object(var members) = self else { return self }
        if let first = members.firstIndex(where: { $0.key == key }) {
            members[first].value = value
            members = members.enumerated().filter { $0.offset == first || $0.element.key != key }.map(\.element)
        } else {
            members.append((key, value))
        }
        return .object(members)
    }
}
