import Synchronization
import WardenConfig

/// How a check ended. Only `fail` stops vLLM from starting.
public enum CheckStatus: String, Sendable, Codable, CaseIterable {
    case pass, warn, fail, skip
}

/// The verdict of one check, before timing is added.
public struct CheckOutcome: Sendable, Equatable {
    public var status: CheckStatus
    public var detail: String
    public var hint: String?
    /// A failure that may clear by itself (memory or a port still held by a process that is exiting), so
    /// systemd's restart should try again; every other failure needs the operator and must not loop.
    public var transient = false

    public static func pass(_ detail: String) -> CheckOutcome { .init(status: .pass, detail: detail, hint: nil) }
    public static func warn(_ detail: String, hint: String) -> CheckOutcome { .init(status: .warn, detail: detail, hint: hint) }
    public static func fail(_ detail: String, hint: String, transient: Bool = false) -> CheckOutcome {
        .init(status: .fail, detail: detail, hint: hint, transient: transient)
    }
    public static func skip(_ detail: String) -> CheckOutcome { .init(status: .skip, detail: detail, hint: nil) }

    /// The worst of several outcomes, details joined; used by checks that look at several things.
    static func combine(_ outcomes: [CheckOutcome], passing: String) -> CheckOutcome {
        let problems = outcomes.filter { $0.status == .fail || $0.status == .warn }
        guard !problems.isEmpty else { return .pass(passing) }
        let status: CheckStatus = problems.contains { $0.status == .fail } ? .fail : .warn
        let hints = problems.compactMap(\.hint).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        let transient = status == .fail && problems.allSatisfy { $0.status != .fail || $0.transient }
        return CheckOutcome(status: status, detail: problems.map(\.detail).joined(separator: "; "), hint: hints.joined(separator: "; "),
                            transient: transient)
    }
}

/// One preflight check: a stable id, a one-line title, and a verdict computed from the shared context.
public struct PreflightCheck: Sendable {
    public let id: String
    public let title: String
    /// Longest the check may run; past it the check fails instead of holding up the start.
    public let budget: Duration
    let evaluate: @Sendable (PreflightContext) -> CheckOutcome

    init(_ id: String, _ title: String, budget: Duration = .seconds(3), evaluate: @escaping @Sendable (PreflightContext) -> CheckOutcome) {
        self.id = id
        self.title = title
        self.budget = budget
        self.evaluate = evaluate
    }
}

/// What every check sees: the deployment, the host, and facts gathered once and shared (the NVML pass).
public final class PreflightContext: Sendable {
    public let deployment: Deployment
    public let host: any PreflightHost
    /// Whether `gpu.nvml` runs (and alone reports an unusable NVML), was skipped on purpose, or was left out.
    public enum NVMLCheck: Sendable { case runs, skipped, notSelected }
    let nvmlCheck: NVMLCheck
    private let cachedNVML = Mutex<NVMLReport?>(nil)

    public init(deployment: Deployment, host: any PreflightHost, nvmlCheck: NVMLCheck = .runs) {
        self.deployment = deployment
        self.host = host
        self.nvmlCheck = nvmlCheck
    }

    /// One NVML pass for all GPU checks, run on first use.
    var nvml: NVMLReport {
        cachedNVML.withLock { cached in
            if let cached { return cached }
            let report = host.nvmlReport(deviceIndexes: GPUSelection(cudaVisibleDevices: environment["CUDA_VISIBLE_DEVICES"]))
            cached = report
            return report
        }
    }

    /// The process environment vLLM will run with: the host's, overlaid with the deployment's vLLM environment.
    var environment: [String: String] {
        var merged = host.environment
        for (name, value) in deployment.vllm.environment { merged[name] = value }
        return merged
    }

    var serviceAccount: Account? { host.lookupAccount(deployment.vllm.user) }

    /// GPUs vLLM needs: tensor × pipeline parallel size.
    var requiredGPUs: Int { deployment.vllm.tensorParallelSize * deployment.vllm.pipelineParallelSize }

    /// `model.fit` and `model.files` both read `config.json`; parsed once per read.
    func modelConfig() -> ModelConfig? {
        guard deployment.vllm.isLocalModel,
              let bytes = host.readFile(deployment.vllm.model + "/config.json", limit: 4 * 1024 * 1024) else { return nil }
        return ModelConfig(bytes)
    }
}

extension NVMLReport {
    /// `gpu.nvml`'s failure when NVML itself is unusable.
    var unavailableOutcome: CheckOutcome? {
        guard let failure else { return nil }
        let (detail, hint) = failure.explanation
        return .fail("no GPU facts: \(detail)", hint: hint)
    }

}

extension PreflightContext {
    /// What a check that needs NVML gives when it is unusable: `gpu.nvml` fails once and says why, the checks
    /// that depend on it skip (also when the operator skipped `gpu.nvml`); a run that merely left it out
    /// (`--only gpu.memory`) fails them instead of passing.
    var nvmlUnavailableOutcome: CheckOutcome? {
        guard let unavailable = nvml.unavailableOutcome else { return nil }
        switch nvmlCheck {
        case .runs: return .skip("needs NVML: see gpu.nvml")
        case .skipped: return .skip("needs NVML, and gpu.nvml is skipped")
        case .notSelected: return unavailable
        }
    }
}
