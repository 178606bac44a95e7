import ArgumentParser
import FoundationEssentials
import WardenConfig
import WardenGateway
import WardenJSON
import WardenSystemd

/// `warden status`: the units, vLLM's health and load, the gateway's readiness, bans and refusals, and the keys.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the stack's state on one screen (exit 0 healthy, 1 degraded, 3 down), for people and monitoring.",
        discussion: "Reads systemd (when present), vLLM's /health and /metrics, the gateway's admin listener and the key store.")
    @OptionGroup var options: ConfigOptions
    @Option(help: "Output format: text or json.") var format: OutputFormat = .text

    func run() async throws {
        let deployment = try options.load()
        let units = ["vllm.service", "warden-gateway.service"].map { Self.unit($0, runner: ProcessRunner()) }
        let report = StatusReport(units: units, vllm: Self.vllm(deployment), gateway: Self.gateway(deployment), keys: Self.keys(deployment))
        print(format == .json ? report.json.serialized : report.text)
        throw ExitCode(report.verdict.0.exitCode)
    }

    static func unit(_ name: String, runner: any CommandRunner) -> StatusReport.Unit {
        guard let output = try? runner.run("systemctl", ["show", name, "-p", "LoadState,ActiveState,SubState,NRestarts,StatusText"]), output.status == 0 else {
            return StatusReport.Unit(name: name, activeState: nil)
        }
        var fields: [String: String] = [:]
        for line in output.stdout.split(separator: "\n") {
            let pair = line.split(separator: "=", maxSplits: 1).map(String.init)
            if pair.count == 2 { fields[pair[0]] = pair[1] }
        }
        guard fields["LoadState"] == "loaded" else { return StatusReport.Unit(name: name, activeState: nil) }
        return StatusReport.Unit(name: name, activeState: fields["ActiveState"], subState: fields["SubState"], restarts: fields["NRestarts"].flatMap { Int($0) },
                                 statusText: fields["StatusText"])
    }

    static func vllm(_ deployment: Deployment) -> StatusReport.VLLM {
        let authority = String(deployment.vllm.defaultUpstream.dropFirst("http://".count))
        guard let address = ListenAddress(authority) else { return StatusReport.VLLM(address: authority, health: nil, error: "not an address") }
        let client = AdminClient(address: address)
        do {
            let health = try client.send("GET", "/health")
            let metrics = try? client.send("GET", "/metrics")
            return StatusReport.VLLM(address: address.description, health: health.status, metrics: metrics?.status == 200 ? metrics?.body : nil)
        } catch {
            return StatusReport.VLLM(address: address.description, health: nil, error: "\(error)")
        }
    }

    static func gateway(_ deployment: Deployment) -> StatusReport.Gateway {
        guard let address = ListenAddress(deployment.gateway.adminListen) else {
            return StatusReport.Gateway(address: deployment.gateway.adminListen, document: nil, error: "not an address")
        }
        do {
            let answer = try AdminClient(address: address).send("GET", "/status")
            guard answer.status == 200, let document = try? JSONValue.parse(Array(answer.body.utf8)) else {
                return StatusReport.Gateway(address: address.description, document: nil, error: "answered \(answer.status) (an older gateway? restart it)")
            }
            return StatusReport.Gateway(address: address.description, document: document)
        } catch {
            return StatusReport.Gateway(address: address.description, document: nil, error: "\(error)")
        }
    }

    static func keys(_ deployment: Deployment) -> StatusReport.Keys? {
        guard FileManager.default.fileExists(atPath: deployment.gateway.keyStore),
              let records = try? KeyStore(path: deployment.gateway.keyStore, access: .readOnly).list() else { return nil }
        let now = Int64(Date().timeIntervalSince1970)
        var keys = StatusReport.Keys()
        for record in records {
            if record.revoked != nil { keys.revoked += 1 } else if record.isUsable(at: now) { keys.active += 1 } else { keys.expired += 1 }
        }
        return keys
    }
}
