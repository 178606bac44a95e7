import Foundation
import WardenConfig

/// The result of one check, timed.
public struct CheckResult: Sendable, Equatable, Codable {
    public var id: String
    public var status: CheckStatus
    public var detail: String
    public var hint: String?
    public var durationMilliseconds: Double

    enum CodingKeys: String, CodingKey {
        case id, status, detail, hint
        case durationMilliseconds = "duration_ms"
    }
}

/// Every check's result, in catalog order, and what they add up to.
public struct PreflightReport: Sendable, Equatable {
    public var results: [CheckResult]
    public var durationMilliseconds: Double

    /// Nothing failed (warnings allowed): vLLM may start.
    public var passed: Bool { !results.contains { $0.status == .fail } }

    public func count(_ status: CheckStatus) -> Int { results.filter { $0.status == status }.count }
}

/// `warden preflight`: the catalog of checks and the runner.
public enum Preflight {
    /// Every check, in the order they run and print. Ids are stable: `--only`, `--skip` and JSON consumers use them.
    public static let catalog: [PreflightCheck] = GPUChecks.all + SoftwareChecks.all + ModelChecks.all + SystemChecks.all

    public static var checkIDs: [String] { catalog.map(\.id) }

    /// Runs the selected checks one after another, each within its time budget.
    public static func run(deployment: Deployment, host: any PreflightHost = LinuxHost(), only: Set<String>? = nil,
                           skip: Set<String> = []) -> PreflightReport {
        run(checks: catalog, deployment: deployment, host: host, only: only, skip: skip)
    }

    static func run(checks: [PreflightCheck], deployment: Deployment, host: any PreflightHost, only: Set<String>? = nil,
                    skip: Set<String> = []) -> PreflightReport {
        let context = PreflightContext(deployment: deployment, host: host)
        let started = ContinuousClock.now
        var results: [CheckResult] = []
        for check in checks where (only?.contains(check.id) ?? true) && !skip.contains(check.id) {
            let checkStarted = ContinuousClock.now
            let outcome = runWithBudget(check.budget) { check.evaluate(context) }
                ?? .fail("did not finish within \(check.budget) (a hung driver or file-system call)", hint: "look for stuck NFS mounts or GPU Xid errors in `dmesg`")
            results.append(CheckResult(id: check.id, status: outcome.status, detail: outcome.detail, hint: outcome.hint,
                                       durationMilliseconds: milliseconds(ContinuousClock.now - checkStarted)))
        }
        return PreflightReport(results: results, durationMilliseconds: milliseconds(ContinuousClock.now - started))
    }

    static func milliseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return (Double(seconds) * 1000 + Double(attoseconds) / 1e15).rounded(toPlaces: 2)
    }
}

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        let scale = pow(10, Double(places))
        return (self * scale).rounded() / scale
    }
}
