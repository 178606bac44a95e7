import WardenConfig
import WardenSystemd

/// The unit: its exposure score, the sandbox Warden's unit has and it lacks, stop and restart behaviour, its user.
enum UnitAudit {
    static func findings(_ context: AuditContext) -> [Finding] {
        guard let unit = context.target.unit, let directives = context.target.directives else {
            guard let source = context.target.invocationSource else { return [] }
            return [Finding("unit.none", .medium, "vLLM does not run under systemd", evidence: ["found as \(source), in no .service control group"],
                            fix: "run vLLM as a hardened systemd unit (sandbox, restart policy, orderly stop)",
                            wardenFix: "warden install")]
        }
        var findings: [Finding] = []
        if let score = exposureScore(unit, context: context) { findings.append(score) }
        let gaps = sandboxGaps(directives, deployment: context.effectiveDeployment, systemd: context.systemdVersion)
        if !gaps.isEmpty {
            findings.append(Finding("unit.sandbox", .medium, "\(unit) lacks \(gaps.filter { $0.hasPrefix("+") }.count) sandbox setting(s) Warden's unit has",
                                    evidence: gaps, fix: "add the + lines to a drop-in (`systemctl edit \(unit)`), or replace the unit",
                                    wardenFix: "warden unit render (then warden install)"))
        }
        findings += stopAndRestart(unit, directives, context: context)
        let user = directives.last("User") ?? ""
        if user.isEmpty || user == "root" || user == "0" {
            findings.append(Finding("unit.root", .high, "vLLM runs as root", evidence: [user.isEmpty ? "\(unit) has no User=" : "User=\(user)"],
                                    fix: "run it as a dedicated system user (`useradd --system vllm`, User=vllm)", wardenFix: "warden install"))
        }
        let preflight = directives.values("ExecStartPre").filter { !$0.isEmpty && !$0.contains("sleep") }
        if !preflight.isEmpty {
            findings.append(Finding("unit.execstartpre", .low, "checks in ExecStartPre= are retried until the start limit locks the unit",
                                    evidence: preflight.map { "ExecStartPre=\($0)" },
                                    fix: "run checks from the start script before `exec vllm serve`, and list their permanent-failure status in RestartPreventExitStatus= (systemd applies it to the main process only)",
                                    wardenFix: "warden preflight (run by Warden's start script)"))
        }
        return findings
    }

    /// `systemd-analyze security` of the live unit, against the score Warden's unit reaches.
    static func exposureScore(_ unit: String, context: AuditContext) -> Finding? {
        guard let output = try? context.host.commands.run("systemd-analyze", ["security", "--no-pager", unit]),
              let score = UnitVerifier.exposure(in: output.combined) else { return nil }
        let target = UnitVerifier.targets["vllm.service"] ?? 1.5
        guard score > target else { return nil }
        let top = UnitVerifier.topExposures(in: output.stdout).prefix(5).map { "  \($0)" }
        return Finding("unit.exposure", score >= 7 ? .high : .medium, "systemd-analyze security rates \(unit) \(score) (Warden's vLLM unit: ≤ \(target))",
                       evidence: ["`systemd-analyze security \(unit)`: overall exposure \(score)"] + (top.isEmpty ? [] : ["largest remaining exposures:"] + top),
                       fix: "tighten the sandbox (see unit.sandbox)", wardenFix: "warden unit render")
    }

    /// Warden's sandbox settings the unit lacks or sets differently, as `+`/`-` lines.
    static func sandboxGaps(_ directives: UnitDirectives, deployment: Deployment, systemd: SystemdVersion) -> [String] {
        var wanted: [(key: String, values: [String])] = []
        for property in VLLMSandbox.properties(for: deployment, systemd: systemd) {
            if let index = wanted.firstIndex(where: { $0.key == property.key }) { wanted[index].values.append(property.value) } else { wanted.append((property.key, [property.value])) }
        }
        var lines: [String] = []
        for (key, values) in wanted {
            let present = directives.values(key)
            guard Set(present) != Set(values) else { continue }
            lines += present.filter { !values.contains($0) }.map { "- \(key)=\($0)" }
            lines += values.filter { !present.contains($0) }.map { "+ \(key)=\($0)" }
        }
        return lines
    }

    static func stopAndRestart(_ unit: String, _ directives: UnitDirectives, context: AuditContext) -> [Finding] {
        var findings: [Finding] = []
        let killMode = directives.last("KillMode") ?? "control-group"
        if killMode != "mixed" {
            let orphans = killMode == "process" || killMode == "none"
            findings.append(Finding("unit.killmode", orphans ? .high : .medium,
                                    orphans ? "KillMode=\(killMode) leaves vLLM's engine and GPU workers running after a stop" : "KillMode=\(killMode) sends SIGTERM to every vLLM process at once",
                                    evidence: ["KillMode=\(killMode)\(directives.last("KillMode") == nil ? " (systemd's default)" : "")"],
                                    fix: "KillMode=mixed: SIGTERM to the API server only, so it drains; the final SIGKILL still reaches every worker",
                                    wardenFix: "warden unit render"))
        }
        let drain = context.target.invocation?.value("--shutdown-timeout").flatMap(Int.init) ?? 0
        let stopText = directives.last("TimeoutStopSec") ?? "90s"
        if let stop = timeSpanSeconds(stopText), stop <= drain {
            findings.append(Finding("unit.stop-timeout", .medium, "TimeoutStopSec=\(stopText) kills vLLM before its --shutdown-timeout \(drain) s ends",
                                    evidence: ["TimeoutStopSec=\(stopText)", "--shutdown-timeout \(drain)"],
                                    fix: "TimeoutStopSec=\(drain + 30)", wardenFix: "warden unit render"))
        } else if drain == 0, context.target.invocation != nil {
            findings.append(Finding("unit.no-drain", .low, "every stop or restart aborts in-flight requests",
                                    evidence: ["no --shutdown-timeout (vLLM ≥ 0.18 drains for that many seconds on SIGTERM)", "TimeoutStopSec=\(stopText)"],
                                    fix: "add --shutdown-timeout 30 and TimeoutStopSec=60", wardenFix: "warden unit render"))
        }
        let restart = directives.last("Restart") ?? "no"
        if restart == "no" {
            findings.append(Finding("unit.restart", .medium, "vLLM is not restarted when it fails", evidence: ["Restart=\(restart)"],
                                    fix: "Restart=on-failure with RestartSec=30s and a start limit", wardenFix: "warden unit render"))
        } else if restart == "always", directives.values("RestartPreventExitStatus").isEmpty {
            findings.append(Finding("unit.restart", .low, "Restart=always restarts even after a configuration error, in a loop",
                                    evidence: ["Restart=always", "no RestartPreventExitStatus="],
                                    fix: "Restart=on-failure and RestartPreventExitStatus=2 (vLLM's exit status for a bad flag)", wardenFix: "warden unit render"))
        }
        return findings
    }
}
