/// A Python package version, ordered as PEP 440 orders the common forms: numeric release segments
/// (`0.10.1.1`; missing segments count as 0), then `.devN` < `aN` < `bN` < `rcN` < the release < `.postN`.
/// A local label (`+cu128`) is ignored.
public struct PackageVersion: Sendable, Comparable, CustomStringConvertible {
    public let release: [Int]
    /// `(rank, number)`: dev 0, a 1, b 2, rc 3, final 4, post 5.
    let phase: (rank: Int, number: Int)
    public let description: String

    public init?(_ text: String) {
        description = text
        var rest = Substring(text.lowercased().split(separator: "+").first ?? "")
        if rest.hasPrefix("v") { rest = rest.dropFirst() }
        var release: [Int] = []
        while let digits = Optional(rest.prefix { $0.isNumber }), !digits.isEmpty, let number = Int(digits) {
            release.append(number)
            rest = rest.dropFirst(digits.count)
            guard rest.hasPrefix("."), rest.dropFirst().first?.isNumber == true else { break }
            rest = rest.dropFirst()
        }
        guard !release.isEmpty else { return nil }
        self.release = release
        let suffix = rest.drop { $0 == "." || $0 == "-" || $0 == "_" }
        let phases: [(String, Int)] = [("dev", 0), ("alpha", 1), ("a", 1), ("beta", 2), ("b", 2), ("rc", 3), ("c", 3), ("post", 5)]
        if suffix.isEmpty {
            phase = (4, 0)
        } else if let (name, rank) = phases.first(where: { suffix.hasPrefix($0.0) }), let number = Int("0" + suffix.dropFirst(name.count).prefix { $0.isNumber }) {
            phase = (rank, number)
        } else {
            return nil
        }
    }

    public static func < (lhs: PackageVersion, rhs: PackageVersion) -> Bool {
        for index in 0..<max(lhs.release.count, rhs.release.count) {
            let left = index < lhs.release.count ? lhs.release[index] : 0
            let right = index < rhs.release.count ? rhs.release[index] : 0
            if left != right { return left < right }
        }
        return lhs.phase < rhs.phase
    }

    public static func == (lhs: PackageVersion, rhs: PackageVersion) -> Bool { !(lhs < rhs) && !(rhs < lhs) }
}
