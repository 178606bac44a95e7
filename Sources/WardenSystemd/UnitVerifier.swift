/// `systemd-analyze verify` and `security --offline=true` over rendered units, with the score targets.
public struct UnitVerifier: Sendable {
    /// Highest acceptable `systemd-analyze security` exposure per unit (displayed scale, 0–10).
    public static let targets: [String: Double] = ["vllm.service": 1.5, "warden-gateway.service": 1.0]

    public struct UnitReport: Sendable, Equatable {
        public var unit: String
        /// Lines of `systemd-analyze verify` that name a problem with this unit (unknown keys, unparsable values).
        public var verifyProblems: [String]
        public var exposure: Double?
        public var target: Double
        /// Remaining exposures worth fixing (≥ 0.2), as `name: description (exposure)`.
        public var topExposures: [String]
        /// Why no score was taken when this systemd cannot score a unit file offline (older than 250, as on
        /// Ubuntu 22.04): not a failure of the unit.
        public var scoreSkipped: String? = nil

        public var passed: Bool { verifyProblems.isEmpty && (scoreSkipped != nil || (exposure.map { $0 <= target } ?? false)) }
    }

    let runner: any CommandRunner
    /// Programs `warden install` puts in place; before install their absence is expected, not a problem.
    let installedPrograms: [String]

    public init(runner: any CommandRunner = ProcessRunner(), layout: InstallLayout = InstallLayout()) {
        self.runner = runner
        self.installedPrograms = [layout.wardenBinary, layout.startScript]
    }

    public func verify(directory: String) throws -> [UnitReport] {
        try Self.targets.keys.sorted().map { unit in
            let path = directory + "/" + unit
            let verify = try runner.run("systemd-analyze", ["verify", path])
            let security = try runner.run("systemd-analyze", ["security", "--offline=true", "--no-pager", path])
            let problems = Self.problems(in: verify.combined, unit: unit).filter { line in
                !installedPrograms.contains { line.contains("Command \($0) is not executable: No such file") }
            }
            let exposure = Self.exposure(in: security.combined)
            // systemd before 250 has no --offline: it rejects the option rather than scoring the file.
            let unsupported = exposure == nil && security.status != 0 && security.combined.contains("unrecognized option '--offline")
            return UnitReport(unit: unit, verifyProblems: problems, exposure: exposure, target: Self.targets[unit] ?? 1.0,
                              topExposures: Self.topExposures(in: security.stdout),
                              scoreSkipped: unsupported ? "this systemd cannot score a unit file offline (needs systemd 250); once installed, "
                                  + "`systemd-analyze security \(unit)` scores the loaded unit" : nil)
        }
    }

    /// Lines that mean systemd will not apply what the file says.
    static func problems(in output: String, unit: String) -> [String] {
        let markers = ["Unknown key", "Unknown section", "Failed to parse", "ignoring", "Invalid", "is not executable", "Missing"]
        return output.split(separator: "\n").map(String.init).filter { line in
            markers.contains { line.contains($0) }
        }
    }

    /// The number from `→ Overall exposure level for vllm.service: 1.4 OK`.
    public static func exposure(in output: String) -> Double? {
        guard let line = output.split(separator: "\n").last(where: { $0.contains("Overall exposure level") }),
              let value = line.split(separator: ":").last?.split(separator: " ").first else { return nil }
        return Double(value)
    }

    /// Rows marked ✗ whose exposure is at least 0.2, biggest first.
    public static func topExposures(in output: String) -> [String] {
        var rows: [(String, Double)] = []
        for line in output.split(separator: "\n") where line.hasPrefix("✗") {
            let fields = line.dropFirst().split(separator: " ", omittingEmptySubsequences: true)
            guard let last = fields.last, let value = Double(last), value >= 0.2, let name = fields.first else { continue }
            let description = fields.dropFirst().dropLast().joined(separator: " ")
            rows.append(("\(name) \(description) (\(value))", value))
        }
        return rows.sorted { $0.1 > $1.1 }.map(\.0)
    }
}
