import ArgumentParser
import WardenConfig
import WardenPreflight

/// `warden preflight`: native checks of the GPU host before vLLM starts (the unit's `ExecStartPre=`).
struct PreflightCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preflight",
        abstract: "Check the GPU host before vLLM starts (exit 0 ready, 1 a check failed).",
        discussion: "Checks: \(Preflight.checkIDs.joined(separator: ", ")). Warnings do not fail the run."
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

    @OptionGroup var options: ConfigOptions
    @Option(help: "Output format: text or json.") var format: Format = .text
    @Option(help: ArgumentHelp("Run only these checks (comma-separated ids).", valueName: "ids")) var only: String?
    @Option(help: ArgumentHelp("Skip these checks (comma-separated ids).", valueName: "ids")) var skip: String?

    func run() async throws {
        let onlyIDs = try parseIDs(only, option: "--only")
        let skipIDs = try parseIDs(skip, option: "--skip") ?? []
        let deployment = try options.load()
        let report = Preflight.run(deployment: deployment, only: onlyIDs, skip: skipIDs)
        print(format == .json ? report.json : report.text, terminator: "")
        if !report.passed { throw ExitCode(WardenExit.checkFailed) }
    }

    private func parseIDs(_ text: String?, option: String) throws -> Set<String>? {
        guard let text else { return nil }
        let ids = Set(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        let unknown = ids.subtracting(Preflight.checkIDs)
        guard unknown.isEmpty else {
            throw ValidationError("\(option): unknown check id(s) \(unknown.sorted().joined(separator: ", ")); known: \(Preflight.checkIDs.joined(separator: ", "))")
        }
        return ids
    }
}

import Foundation
