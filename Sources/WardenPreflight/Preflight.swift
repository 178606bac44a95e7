import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import WardenConfig

/// The result of one check, timed.
public struct CheckResult: Sendable, Equatable, Codable {
    public var id: String
    public var status: CheckStatus
    public var detail: String
    public var hint: String?
    /// A failure that may clear by itself; see `CheckOutcome.transient`.
    public var transient: Bool
    public var durationMilliseconds: Double

    enum CodingKeys: String, CodingKey {
        case id, status, detail, hint, transient
        case durationMilliseconds = "duration_ms"
    }
}

/// Every check's result, in catalog order, and what they add up to.
public struct PreflightReport: Sendable, Equatable {
    public var results: [CheckResult]
    public var durationMilliseconds: Double

    /// Nothing failed (warnings allowed): vLLM may start.
    public var passed: Bool { !results.contains { $0.status == .fail } }

    /// A failure that will not clear by itself: restarting vLLM before the operator fixes it only loops.
    public var failedPermanently: Bool { results.contains { $0.status == .fail && !$0.transient } }

    public func count(_ status: CheckStatus) -> Int { results.filter { $0.status == status }.count }
}

/// `warden preflight`: the catalog of checks and the runner.
public enum Preflight {
    /// Exit status for a failure that will not clear by itself; the vLLM unit lists it in `RestartPreventExitStatus=`.
    public static let permanentFailureExitStatus: Int32 = 3
    /// Every check, in the order they run and print. Ids are stable: `--only`, `--skip` and JSON consumers use them.
    public static let catalog: [PreflightCheck] = GPUChecks.all + SoftwareChecks.all + ModelChecks.all + SystemChecks.all

    public static var checkIDs: [String] { catalog.map(\.id) }

    /// The groups ids start with (`gpu`, `model`, …); `--only`/`--skip` take a group for all its checks.
    public static var groups: [String] {
        catalog.map { String($0.id.prefix { $0 != "." }) }.reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
    }

    /// The check ids a selector names: an id itself, or every id of a group.
    public static func ids(matching selector: String) -> [String] {
        checkIDs.filter { $0 == selector || $0.hasPrefix(selector + ".") }
    }

    /// Runs the selected checks one after another, each within its time budget.
    public static func run(deployment: Deployment, host: any PreflightHost = LinuxHost(), only: Set<String>? = nil,
                           skip: Set<String> = []) -> PreflightReport {
        run(checks: catalog, deployment: deployment, host: host, only: only, skip: skip)
    }

    static func run(checks: [PreflightCheck], deployment: Deployment, host: any PreflightHost, only: Set<String>? = nil,
                    skip: Set<String> = []) -> PreflightReport {
        let selected = checks.filter { (only?.contains($0.id) ?? true) && !skip.contains($0.id) }
        let nvmlID = GPUChecks.nvml.id
        let context = PreflightContext(deployment: deployment, host: host,
                                       nvmlCheck: selected.contains { $0.id == nvmlID } ? .runs : skip.contains(nvmlID) ? .skipped : .notSelected)
        let started = ContinuousClock.now
        var results: [CheckResult] = []
        for check in selected {
            let checkStarted = ContinuousClock.now
            let outcome = runWithBudget(check.budget) { check.evaluate(context) }
                ?? .fail("did not finish within \(check.budget) (a hung driver or file-system call)", hint: "look for stuck NFS mounts or GPU Xid errors in `dmesg`",
                         transient: true)
            results.append(CheckResult(id: check.id, status: outcome.status, detail: outcome.detail, hint: outcome.hint, transient: outcome.transient,
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
