import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import WardenConfig
import WardenSystemd

/// `warden install`: accounts, directories, units, start script, key file and deployment file, idempotently.
struct InstallCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Install the units, start script, key file and deployment file (idempotent; --dry-run shows a diff)."
    )
    @OptionGroup var options: ConfigOptions
    @Option(help: "Install under this root instead of / (no accounts are created, no systemctl).") var root = "/"
    @Flag(help: "Show what would change without writing anything.") var dryRun = false
    @Option(help: "Render units for this systemd version (default: the installed one).") var systemdVersion: Int?
    @Option(help: ArgumentHelp("Install this warden binary (a release build from scripts/package) instead of the running one.", valueName: "path"))
    var binary: String?

    func run() async throws {
        let deployment = try options.loadForUnits()
        let text = try String(contentsOfFile: options.path, encoding: .utf8)
        // The installed deployment file is always the default one: units must not read a file the sandbox hides.
        var layout = RunningBinary.layout(deploymentFile: Deployment.defaultPath)
        let installed: [UInt8]?
        if let binary {
            guard let bytes = FileManager.default.contents(atPath: binary).map({ [UInt8]($0) }) else {
                printError("install: cannot read --binary \(binary)")
                throw ExitCode(WardenExit.usage)
            }
            installed = bytes
            layout.wardenBinary = InstallLayout().wardenBinary
        } else if layout.wardenBinary == RunningBinary.packagedPath {
            installed = nil  // the package owns /usr/bin/warden; units point there
        } else {
            installed = FileManager.default.contents(atPath: "/proc/self/exe").map { [UInt8]($0) }
        }
        if let installed, let problem = RunningBinary.toolchainDependency(of: installed, path: binary ?? RunningBinary.path) {
            printError("install: \(problem): the units would not start. Install the package (`apt install ./warden_<version>_amd64.deb`), or build one with `scripts/package` and pass `--binary dist/warden-<version>-linux-x86_64/warden`.")
            throw ExitCode(WardenExit.checkFailed)
        }
        let installer = Installer(root: root, layout: layout)
        do {
            let changes = try installer.install(deployment: deployment, deploymentText: text, systemd: try resolveSystemdVersion(systemdVersion),
                                                binary: installed, dryRun: dryRun)
            report(changes, dryRun: dryRun)
            if !dryRun {
                let stale = installer.running(installer.servicesToRestart(after: changes, deployment: deployment))
                if !stale.isEmpty {
                    print("running with the old files: \(stale.joined(separator: " ")); apply with `systemctl restart \(stale.joined(separator: " "))`")
                }
            }
        } catch let error as InstallError {
            printError("install failed: \(error); the entries before it were written, and install is safe to run again once this is fixed")
            throw ExitCode(WardenExit.checkFailed)
        }
    }
}

/// `warden uninstall`: removes units, start script and binary; keeps models, keys, state and the deployment file.
struct UninstallCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uninstall",
        abstract: "Remove what install created, keeping models, keys, state and the deployment file."
    )
    @Option(help: "Uninstall under this root instead of /.") var root = "/"
    @Flag(help: "Show what would be removed without removing it.") var dryRun = false

    func run() async throws {
        report(try Installer(root: root).uninstall(dryRun: dryRun), dryRun: dryRun)
    }
}

private func report(_ changes: [InstallChange], dryRun: Bool) {
    // Unchanged entries are listed only when there is something to say (a unit that is not Warden's, kept).
    for change in changes where change.kind != .unchanged || !change.details.isEmpty {
        print("\(dryRun && change.kind != .unchanged ? "would be " : "")\(change.kind == .unchanged ? "kept" : change.kind.rawValue): \(change.path)")
        for detail in change.details { print("    \(detail)") }
    }
    let changed = changes.filter { $0.kind != .unchanged }.count
    print("\(changed) changed, \(changes.count - changed) unchanged" + (dryRun ? " (dry run: nothing written)" : ""))
}
