import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import WardenConfig
import WardenSystemd

/// `warden selftest`: proves on this host, before the first model load, that CUDA works inside vLLM's sandbox.
struct SelftestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Run a CUDA smoke test under vllm.service's exact sandbox (systemd-run); name the setting that breaks it."
    )
    @OptionGroup var options: ConfigOptions
    @Option(help: "Render the sandbox for this systemd version (default: the installed one).") var systemdVersion: Int?
    @Option(help: ArgumentHelp("What to run: cuda (the GPU smoke test), cpu (vLLM's CPU-side needs: checks the sandbox mechanism on a host without a GPU, not CUDA), or the path of a Python file of your own.",
                               valueName: "cuda|cpu|FILE"))
    var workload = "cuda"

    func run() async throws {
        let deployment = try options.loadForUnits()
        let chosen = try Self.workload(named: workload)
        guard FileManager.default.fileExists(atPath: "/run/systemd/system") else {
            printError("selftest needs a host booted with systemd (no /run/systemd/system here); run it on the GPU host as root")
            throw ExitCode(WardenExit.checkFailed)
        }
        guard FileManager.default.fileExists(atPath: "/run/dbus/system_bus_socket") else {
            printError("selftest runs the workload with `systemd-run --wait --pipe`, which needs the system D-Bus (no /run/dbus/system_bus_socket here): `apt-get install dbus` or start dbus.service")
            throw ExitCode(WardenExit.checkFailed)
        }
        let report = try Selftest(deployment: deployment, systemd: try resolveSystemdVersion(systemdVersion), workload: chosen).run()
        for attempt in report.attempts {
            let label = attempt.relaxed.map { "without \($0)" } ?? "full sandbox"
            print("\(attempt.status == 0 ? "PASS" : "FAIL")  \(label)")
            for line in attempt.output.split(separator: "\n").suffix(attempt.status == 0 ? 1 : 5) { print("      \(line)") }
        }
        if report.passed {
            print(chosen.claim)
        } else if let culprit = report.culprit {
            print("The sandbox breaks the workload here through \(culprit): relax it in a drop-in (`systemctl edit vllm.service`), or for MemoryDenyWriteExecute set systemd.memory_deny_write_execute: false.")
            throw ExitCode(WardenExit.checkFailed)
        } else {
            print(report.failsWithoutSandbox ? "The workload fails even without any sandbox: fix the driver, CUDA or the venv first (see `warden preflight`)."
                                             : "No single setting explains the failure; compare the outputs above.")
            throw ExitCode(WardenExit.checkFailed)
        }
    }

    /// `cuda`, `cpu`, or a readable Python file (read here: the sandbox may hide where it lives).
    static func workload(named name: String) throws -> SelftestWorkload {
        switch name {
        case "cuda": return .cuda
        case "cpu": return .cpu
        default:
            guard let data = FileManager.default.contents(atPath: name), let source = String(data: data, encoding: .utf8) else {
                throw ValidationError("--workload: '\(name)' is neither cuda, cpu nor a readable Python file")
            }
            return .custom(source: source)
        }
    }
}
