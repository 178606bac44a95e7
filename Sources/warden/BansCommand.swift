import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import WardenConfig
import WardenJSON

/// `warden bans`: talks to the running gateway's admin listener.
struct BansCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bans",
        abstract: "List or lift the running gateway's address bans (through its admin listener).",
        subcommands: [List.self, Unban.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List addresses banned now, with the time left.")
        @OptionGroup var options: ConfigOptions
        @Option(help: "Output format: text or json (one object a line).") var format: OutputFormat = .text

        func run() async throws {
            let response = try AdminClient(options: options).sendReporting("GET", "/bans")
            guard response.status == 200, let document = try? JSONValue.parse(response.body), let bans = document["bans"]?.arrayValue else {
                printError("bans: unexpected answer from the gateway (\(response.status)): \(response.body)")
                throw ExitCode(WardenExit.checkFailed)
            }
            if format == .json {
                for ban in bans { print(ban.serialized) }
                return
            }
            if bans.isEmpty { print("no address is banned") }
            for ban in bans {
                let text = { (key: String) in ban[key].map { $0.stringValue ?? $0.serialized } ?? "?" }
                print("\(text("address"))  \(text("remaining_seconds")) s left  (ban #\(text("bans")))")
            }
        }
    }

    struct Unban: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lift the ban on an address (IPv6: any address of the /64).")
        @OptionGroup var options: ConfigOptions
        @Argument(help: "The address to unban.") var address: String

        func validate() throws {
            guard IPAddress(address) != nil else { throw ValidationError("'\(address)' is not an IP address") }
        }

        func run() async throws {
            let response = try AdminClient(options: options).sendReporting("DELETE", "/bans/\(address)")
            switch response.status {
            case 200: print("unbanned \(address)")
            case 404: print("\(address) was not banned")
            default:
                printError("bans: the gateway answered \(response.status): \(response.body)")
                throw ExitCode(WardenExit.checkFailed)
            }
        }
    }
}
