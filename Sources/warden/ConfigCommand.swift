import ArgumentParser
import WardenConfig

/// `warden config`: check, explain and print the deployment file.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check, print or explain the deployment file.",
        subcommands: [Check.self, Example.self, Show.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the deployment file and print every problem (exit 0 valid, 2 invalid)."
        )
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            _ = try options.load()
            print("\(options.path): valid")
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
