import WardenConfig
import WardenPreflight

/// Preflight's safety checks (device nodes, caches, the key file), run as they are and reported as findings.
enum HostAudit {
    /// With a deployment file its cache layout is known; without one only the key file and devices are meaningful.
    static func findings(_ context: AuditContext) -> [Finding] {
        guard context.target.invocation != nil || context.deployment != nil else { return [] }
        var checks = ["gpu.devices"]
        if context.deployment != nil { checks.append("fs.caches") }
        if context.deployment != nil || !context.target.environmentFiles.isEmpty { checks.append("secrets.envfile") }
        let report = Preflight.run(deployment: context.effectiveDeployment, host: context.host, only: Set(checks))
        return report.results.compactMap { result in
            guard result.status == .fail || result.status == .warn else { return nil }
            let severity: Severity = result.status == .warn ? .low : result.id.hasPrefix("secrets.") ? .high : .medium
            return Finding(result.id, severity, "preflight \(result.id): \(result.status.rawValue)", evidence: [result.detail],
                           fix: result.hint ?? "see `warden preflight`", wardenFix: "warden preflight --only \(result.id)")
        }
    }
}
