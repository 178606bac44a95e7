import ArgumentParser
import Foundation
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

    func run() async throws {
        let deployment = try options.load()
        let text = try String(contentsOfFile: options.path, encoding: .utf8)
        let binary = FileManager.default.contents(atPath: "/proc/self/exe").map { [UInt8]($0) }
        let installer = Installer(root: root)
        do {
            let changes = try installer.install(deployment: deployment, deploymentText: text, systemd: try resolveSystemdVersion(systemdVersion),
                                                binary: binary, dryRun: dryRun)
            report(changes, dryRun: dryRun)
        } catch let error as InstallError {
            printError("install failed: \(error)")
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
    for change in changes where change.kind != .unchanged {
        print("\(dryRun ? "would be " : "")\(change.kind.rawValue): \(change.path)")
        for detail in change.details { print("    \(detail)") }
    }
    let changed = changes.filter { $0.kind != .unchanged }.count
    print("\(changed) changed, \(changes.count - changed) unchanged" + (dryRun ? " (dry run: nothing written)" : ""))
}
