/// The systemd version units are rendered for: decides which directives may be emitted.
public struct SystemdVersion: Sendable, Equatable, Comparable, CustomStringConvertible {
    public let major: Int

    public init(_ major: Int) { self.major = major }

    /// Debian 12's systemd, the baseline every rendered unit must parse on.
    public static let debian12 = SystemdVersion(252)

    /// Parses the first line of `systemctl --version` (`systemd 252 (252.38-1~deb12u1)`).
    public init?(systemctlOutput: String) {
        guard let line = systemctlOutput.split(separator: "\n").first, line.hasPrefix("systemd "),
              let number = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return nil }
        major = number
    }

    public static func < (lhs: SystemdVersion, rhs: SystemdVersion) -> Bool { lhs.major < rhs.major }
    public var description: String { String(major) }
}

/// Directives (or values) newer than Debian 12's systemd, with the first version that accepts them.
/// Rendering for an older version leaves them out: systemd ignores an unknown key, and an unparsable value
/// drops the whole setting (`PrivateTmp=disconnected` on 252 turns PrivateTmp off), which is worse than omitting it.
enum GatedDirective {
    static let restartBackoff = SystemdVersion(254)      // RestartSteps=, RestartMaxDelaySec=
    static let privateTmpDisconnected = SystemdVersion(257)
    static let protectControlGroupsPrivate = SystemdVersion(257)
}
