import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import WardenConfig
import WardenSystemd

/// `warden unit`: render and verify the hardened systemd units.
struct UnitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unit",
        abstract: "Render the hardened systemd units and verify them with systemd-analyze.",
        subcommands: [Render.self, Verify.self]
    )

    struct Render: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write vllm.service, warden-gateway.service, start-vllm.sh and a vllm.env template into a directory."
        )
        @OptionGroup var options: ConfigOptions
        @Option(help: "Render for this systemd version (default: the installed one, from systemctl --version).")
        var systemdVersion: Int?
        @Option(help: "Directory to write into (created when missing).") var out: String

        func run() async throws {
            let deployment = try options.loadForUnits()
            let version = try resolveSystemdVersion(systemdVersion)
            let units = UnitRenderer.render(deployment, systemd: version, layout: RunningBinary.layout(deploymentFile: options.path))
            var isDirectory = false
            if FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory), !isDirectory {
                printError("unit render: --out '\(out)' is a file, not a directory: give a directory (it is created when missing)")
                throw ExitCode(WardenExit.usage)
            }
            // Asked first: an atomic write into a directory it may not write reports a missing file instead.
            if FileManager.default.fileExists(atPath: out), access(out, W_OK) != 0 {
                printError("unit render: cannot write into \(out) (\(String(cString: strerror(errno)))): give --out a directory you may write to")
                throw ExitCode(WardenExit.usage)
            }
            do {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            } catch {
                printError("unit render: cannot create \(out) (\(describeFileError(error))): give --out a directory you may write to")
                throw ExitCode(WardenExit.usage)
            }
            for (name, contents) in units.files {
                let path = out + "/" + name
                // The key file is a template only where none exists: one already there may hold the live key.
                if name.hasSuffix(".env"), FileManager.default.fileExists(atPath: path) {
                    print("kept \(path): it exists already and may hold VLLM_API_KEY (delete it for a fresh template)")
                    continue
                }
                do {
                    try contents.write(toFile: path, atomically: true, encoding: .utf8)
                    let mode: Int = name.hasSuffix(".sh") ? 0o755 : (name.hasSuffix(".env") ? 0o640 : 0o644)
                    try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
                } catch {
                    printError("unit render: cannot write \(path) (\(describeFileError(error))): give --out a directory you may write to")
                    throw ExitCode(WardenExit.usage)
                }
                print("wrote \(path)")
            }
            print("rendered for systemd \(version); check them with `warden unit verify \(out)`")
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run systemd-analyze verify and security --offline on rendered units (exit 1 above the score targets)."
        )
        @Argument(help: "Directory holding vllm.service and warden-gateway.service.") var directory: String

        func run() async throws {
            for unit in ["vllm.service", "warden-gateway.service"] where !FileManager.default.fileExists(atPath: directory + "/" + unit) {
                printError("unit verify: no \(unit) in \(directory): render the units there first (`warden unit render --out \(directory)`)")
                throw ExitCode(WardenExit.usage)
            }
            let reports: [UnitVerifier.UnitReport]
            do {
                reports = try UnitVerifier().verify(directory: directory)
            } catch {
                printError("cannot verify: \(error)")
                throw ExitCode(WardenExit.usage)
            }
            for report in reports {
                let score = report.exposure.map { String($0) } ?? "unknown"
                print("\(report.passed ? "PASS" : "FAIL")  \(report.unit): exposure \(score) (target ≤ \(report.target)), \(report.verifyProblems.count) verify problem(s)")
                if let skipped = report.scoreSkipped { print("      score skipped: \(skipped)") }
                for problem in report.verifyProblems { print("      verify: \(problem)") }
                for exposure in report.topExposures.prefix(6) { print("      exposure: \(exposure)") }
            }
            if reports.contains(where: { !$0.passed }) { throw ExitCode(WardenExit.checkFailed) }
        }
    }
}

/// The systemd version to render for: explicit, else `systemctl --version`, else Debian 12's.
func resolveSystemdVersion(_ explicit: Int?) throws -> SystemdVersion {
    if let explicit {
        guard explicit >= 200 else { throw ValidationError("--systemd-version \(explicit) is too old; warden renders for systemd 200 and newer") }
        return SystemdVersion(explicit)
    }
    if let output = try? ProcessRunner().run("systemctl", ["--version"]), let version = SystemdVersion(systemctlOutput: output.stdout) {
        return version
    }
    return .debian12
}
