import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import WardenConfig
import WardenPreflight

/// `warden preflight`: native checks of the GPU host before vLLM starts (the first step of the unit's start script).
struct PreflightCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preflight",
        abstract: "Check the GPU host before vLLM starts (exit 0 ready, 1 a failure that may clear, 3 a failure to fix first).",
        discussion: """
        Checks: \(Preflight.checkIDs.joined(separator: ", ")). Warnings do not fail the run.
        --only and --skip take ids or groups (\(Preflight.groups.joined(separator: ", "))); $\(skipVariable) adds to --skip,
        so a drop-in (`systemctl edit vllm.service`) can skip a check for the service.
        Exit 3 means a failure that will not clear by itself: the unit lists it in RestartPreventExitStatus=, so
        systemd does not retry; fix it, then `systemctl start vllm.service`.
        """
    )

    static let skipVariable = "WARDEN_PREFLIGHT_SKIP"

    typealias Format = OutputFormat

    @OptionGroup var options: ConfigOptions
    @Option(help: "Output format: text or json.") var format: Format = .text
    @Option(help: ArgumentHelp("Run only these checks (comma-separated ids or groups).", valueName: "ids")) var only: String?
    @Option(help: ArgumentHelp("Skip these checks (comma-separated ids or groups).", valueName: "ids")) var skip: String?

    func run() async throws {
        let onlyIDs = try only.map { try Self.checkIDs(in: $0, source: "--only") }
        var skipIDs = try skip.map { try Self.checkIDs(in: $0, source: "--skip") } ?? []
        // A command line that selects nothing would report "vLLM may start" having checked nothing.
        if let onlyIDs, onlyIDs.isEmpty { throw ValidationError("--only names no check: give ids or groups (\(Preflight.groups.joined(separator: ", ")))") }
        let selected = onlyIDs ?? Set(Preflight.checkIDs)
        if selected.subtracting(skipIDs).isEmpty {
            throw ValidationError("--only and --skip leave no check to run: skip fewer")
        }
        if let fromEnvironment = ProcessInfo.processInfo.environment[Self.skipVariable], !fromEnvironment.isEmpty {
            skipIDs.formUnion(try Self.checkIDs(in: fromEnvironment, source: "$\(Self.skipVariable)"))
        }
        // The unit's drop-in may skip everything on purpose (the documented way to turn preflight off for the
        // service): said, not refused — refusing would stop vLLM for good (exit 2 is not restarted).
        if selected.subtracting(skipIDs).isEmpty {
            printError("preflight: $\(Self.skipVariable) skips every check selected; nothing was checked")
            return
        }
        let deployment = try options.load()
        let report = Preflight.run(deployment: deployment, only: onlyIDs, skip: skipIDs)
        print(format == .json ? report.json : report.text, terminator: "")
        if report.failedPermanently { throw ExitCode(WardenExit.permanentFailure) }
        if !report.passed { throw ExitCode(WardenExit.checkFailed) }
    }

    /// Check ids named by a comma-separated list of ids and groups; an unknown name is an error with a suggestion.
    static func checkIDs(in list: String, source: String) throws -> Set<String> {
        var ids: Set<String> = []
        for selector in list.split(separator: ",").map({ $0.trimmed() }) where !selector.isEmpty {
            let matched = Preflight.ids(matching: selector)
            guard !matched.isEmpty else {
                let suggestion = closestMatch(to: selector, in: Preflight.checkIDs + Preflight.groups).map { "did you mean '\($0)'? " } ?? ""
                throw ValidationError("\(source): no check or group '\(selector)'; \(suggestion)groups: \(Preflight.groups.joined(separator: ", ")); ids: \(Preflight.checkIDs.joined(separator: ", "))")
            }
            ids.formUnion(matched)
        }
        return ids
    }
}
