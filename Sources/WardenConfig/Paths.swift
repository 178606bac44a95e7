/// The directory holding `path` (`/` for a file at the root, `.` for a bare name).
public func parentDirectory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

extension StringProtocol {
    /// The first control character (C0, DEL or C1: a line break, a tab, an escape), if any: what no name or value
    /// shown in a table, a log line or a systemd unit may hold.
    public var firstControlCharacter: Unicode.Scalar? { unicodeScalars.first { $0.properties.generalCategory == .control } }

    /// Without leading and trailing whitespace (spaces, tabs, line breaks).
    public func trimmed() -> String { trimming { $0.isWhitespace } }

    /// Without leading and trailing `characters`.
    public func trimming(_ characters: Set<Character>) -> String { trimming { characters.contains($0) } }

    private func trimming(where drop: (Character) -> Bool) -> String {
        guard let first = firstIndex(where: { !drop($0) }), let last = lastIndex(where: { !drop($0) }) else { return "" }
        return String(self[first...last])
    }
}
