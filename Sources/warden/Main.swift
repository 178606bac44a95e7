import ArgumentParser
import WardenConfig

#if canImport(Glibc)
import Glibc
#endif

enum FileHandleWriter {
    static func write(_ string: String, to descriptor: Int32) {
        var bytes = Array(string.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { Glibc.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written <= 0 { return }
            offset += written
        }
    }
}

/// "Did you mean …" for a mistyped subcommand (`warden confg`, `warden keys lst`).
func suggestion(for arguments: ArraySlice<String>) -> String {
    var subcommands = Warden.configuration.subcommands
    for argument in arguments where !argument.hasPrefix("-") {
        let names = subcommands.map { name(of: $0) }
        if let index = names.firstIndex(of: argument) {
            subcommands = subcommands[index].configuration.subcommands
            continue
        }
        guard let close = closestMatch(to: argument, in: names) else { return "" }
        return "\nDid you mean '\(close)'?"
    }
    return ""
}

private func name(of command: any ParsableCommand.Type) -> String {
    let configuration = command.configuration
    return configuration.commandName ?? String(describing: command).lowercased()
}

/// Runs `warden`, mapping argument-parser's usage failures (64) onto the documented exit code 2.
@main
enum WardenMain {
    static func main() async {
        do {
            var command = try Warden.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = Warden.exitCode(for: error)
            if code == .validationFailure {
                printError(Warden.fullMessage(for: error) + suggestion(for: CommandLine.arguments.dropFirst()))
                exit(WardenExit.usage)
            }
            Warden.exit(withError: error)
        }
    }
}
