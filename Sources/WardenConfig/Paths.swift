/// The directory holding `path` (`/` for a file at the root, `.` for a bare name).
public func parentDirectory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

extension StringProtocol {
    /// Without leading and trailing whitespace (spaces, tabs, line breaks).
    public func trimmed() -> String { trimming { $0.isWhitespace } }

    /// Without leading and trailing `characters`.
    public func trimming(_ characters: Set<Character>) -> String { trimming { characters.contains($0) } }

    private func trimming(where drop: (Character) -> Bool) -> String {
        guard let first = firstIndex(where: { !drop($0) }), let last = lastIndex(where: { !drop($0) }) else { return "" }
        return String(self[first...last])
    }
}
