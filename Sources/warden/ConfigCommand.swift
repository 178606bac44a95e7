import ArgumentParser
import WardenConfig

/// `warden config`: check and print the deployment file.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check the deployment file, or print it (effective, or a commented example).",
        subcommands: [Check.self, Example.self, Show.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the deployment file and print every problem (exit 0 valid, 2 invalid); warnings do not fail it."
        )
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            let warnings = try options.load().warnings()
            for warning in warnings { printError("warning: \(warning)") }
            print("\(options.path): valid" + (warnings.isEmpty ? "" : " (\(warnings.count) warning\(warnings.count == 1 ? "" : "s"))"))
        }
    }

    struct Example: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a fully commented example deployment file with every default."
        )

        func run() async throws {
            print(Deployment.exampleYAML, terminator: "")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the effective configuration with defaults filled in."
        )
        @OptionGroup var options: ConfigOptions
        @Option(help: "Output format: yaml or json.") var format: Deployment.RenderFormat = .yaml

        func run() async throws {
            print(try options.load().rendered(as: format), terminator: "")
        }
    }
}

extension Deployment.RenderFormat: ExpressibleByArgument {}
