import ArgumentParser
import FoundationEssentials
import WardenAudit
import WardenConfig

/// `warden audit`: what is unsafe about the vLLM already running on this host (read-only).
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Review the vLLM already running here: unit, secrets, exposure, dangerous settings, advisories (read-only).",
        discussion: """
        Finds vLLM by --unit, else by its process (`vllm serve …`) or a unit whose ExecStart= starts it, and works
        with or without a Warden deployment file (read only when --config or $WARDEN_CONFIG names one). When vLLM
        runs on another machine, --url alone audits its HTTP routes and says which checks need its own host.
        The live probe sends unauthenticated GET requests to the routes vLLM's --api-key leaves open; it never POSTs.
        Run as root to read other users' process environments and key files.
        Exit codes: 0 no finding at or above --fail-on; 1 findings at or above it; 2 usage error or no vLLM found.
        """
    )

    typealias Format = OutputFormat

    @OptionGroup var options: ConfigOptions
    @Option(help: ArgumentHelp("The systemd unit running vLLM (default: found by process or ExecStart=).", valueName: "name")) var unit: String?
    @Option(help: ArgumentHelp("Where to probe vLLM over HTTP (default: its own listening socket); alone, a vLLM on another machine.", valueName: "url")) var url: String?
    @Option(help: "Output format: text or json.") var format: Format = .text
    @Option(name: .customLong("fail-on"), help: ArgumentHelp("Exit 1 when a finding is at least this severe (info, low, medium, high, critical).", valueName: "severity"))
    var failOn: Severity = .high

    func run() async throws {
        let deployment = try loadDeployment()
        let report: AuditReport
        do {
            report = try Audit.run(deployment: deployment, unit: unit, url: url)
        } catch let error as AuditError {
            printError("audit: \(error.description)")
            throw ExitCode(WardenExit.usage)
        }
        print(format == .json ? report.json : report.text, terminator: "")
        if !report.findings(atLeast: failOn).isEmpty { throw ExitCode(WardenExit.checkFailed) }
    }

    /// The deployment file when named (`--config` or `$WARDEN_CONFIG`); an audit of a non-Warden vLLM needs none.
    private func loadDeployment() throws -> Deployment? {
        guard options.config != nil || ProcessInfo.processInfo.environment["WARDEN_CONFIG"] != nil else { return nil }
        return try options.load()
    }
}

extension Severity: ExpressibleByArgument {}
