import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import WardenConfig
import WardenPreflight

/// `warden`: production hardening for self-hosted vLLM. Each subcommand is a thin shell over a library.
struct Warden: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "warden",
        abstract: "Harden, check and guard a self-hosted vLLM server, from one deployment file.",
        discussion: """
        Every subcommand reads the deployment file: --config PATH, else $WARDEN_CONFIG, else \(Deployment.defaultPath).

        Exit codes: 0 success; 1 a check failed; 2 usage or configuration error; 3 (preflight) a failure that
        will not clear by itself, so systemd must not retry.
        """,
        version: BuildInfo.versionLine,
        subcommands: [StatusCommand.self, ConfigCommand.self, PreflightCommand.self, AuditCommand.self, UnitCommand.self, InstallCommand.self, UninstallCommand.self, SelftestCommand.self, GatewayCommand.self, KeysCommand.self, UsageCommand.self, BansCommand.self, DemoCommand.self]
    )
}

/// The `--config` option every subcommand shares.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Deployment file (default: $WARDEN_CONFIG, else \(Deployment.defaultPath)).", valueName: "path"))
    var config: String?

    var path: String { Deployment.resolvePath(explicit: config) }

    /// An empty `--config` is a mistake (an unset shell variable), never a wish for the default file.
    func validate() throws {
        if config?.trimmed().isEmpty == true {
            throw ValidationError("--config is empty: give the deployment file's path, or leave --config out for $WARDEN_CONFIG or \(Deployment.defaultPath)")
        }
    }

    /// Loads the deployment file; a broken one prints every problem and exits 2.
    func load() throws -> Deployment {
        do {
            return try Deployment.load(path: path)
        } catch {
            printError(error.description)
            throw ExitCode(WardenExit.usage)
        }
    }
}

extension ConfigOptions {
    /// Loads the deployment file for a command that writes units (or runs vLLM's sandbox): credentials they would show
    /// to every local user are refused, exit 2, where other commands only warn of them.
    func loadForUnits() throws -> Deployment {
        let deployment = try load()
        let credentials = deployment.credentialsInUnit()
        guard credentials.isEmpty else {
            printError(ConfigError(file: path, issues: credentials).description)
            throw ExitCode(WardenExit.usage)
        }
        return deployment
    }
}

/// `--format text|json`, the one output flag of every command that prints a report or a list.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// The exit codes documented in `warden --help` and the README.
enum WardenExit {
    static let success: Int32 = 0
    static let checkFailed: Int32 = 1
    static let usage: Int32 = 2
    /// Preflight found a failure that needs the operator; the vLLM unit's `RestartPreventExitStatus=` lists it.
    static let permanentFailure = Preflight.permanentFailureExitStatus
}

func printError(_ message: String) {
    var standardError = StandardError()
    print(message, to: &standardError)
}

/// A file-system error as a person reads it: the system's reason (`Permission denied`, `Not a directory`) rather
/// than Foundation's error dump.
func describeFileError(_ error: any Error) -> String {
    if let underlying = (error as? CocoaError)?.underlying as? POSIXError { return String(cString: strerror(underlying.code.rawValue)) }
    if let posix = error as? POSIXError { return String(cString: strerror(posix.code.rawValue)) }
    return "\(error)"
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandleWriter.write(string, to: 2)
    }
}
