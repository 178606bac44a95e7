import Foundation
import Testing
import WardenConfig
@testable import WardenSystemd

/// Records commands instead of running them.
final class RecordingRunner: CommandRunner, @unchecked Sendable {
    var calls: [[String]] = []
    var answer: ([String]) -> CommandOutput = { _ in CommandOutput(status: 0) }
    func run(_ executable: String, _ arguments: [String]) throws -> CommandOutput {
        calls.append([executable] + arguments)
        return answer([executable] + arguments)
    }
}

@Suite("warden install into a temporary root")
struct InstallerTests {
    struct Root {
        let url: URL
        var path: String { url.path }
        init() throws {
            url = FileManager.default.temporaryDirectory.appendingPathComponent("warden-root-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: url.appendingPathComponent("etc"), withIntermediateDirectories: true)
            try "root:x:0:0::/root:/bin/sh\nvllm:x:990:990::/var/lib/vllm:/usr/sbin/nologin\nwarden:x:991:991::/var/lib/warden:/usr/sbin/nologin\n"
                .write(to: url.appendingPathComponent("etc/passwd"), atomically: true, encoding: .utf8)
            try "root:x:0:\nvllm:x:990:\nwarden:x:991:\n".write(to: url.appendingPathComponent("etc/group"), atomically: true, encoding: .utf8)
        }
        func attributes(_ path: String) throws -> (mode: Int, uid: Int, gid: Int) {
            let attributes = try FileManager.default.attributesOfItem(atPath: self.path + path)
            return ((attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1, (attributes[.ownerAccountID] as? NSNumber)?.intValue ?? -1,
                    (attributes[.groupOwnerAccountID] as? NSNumber)?.intValue ?? -1)
        }
        func read(_ path: String) throws -> String { try String(contentsOfFile: self.path + path, encoding: .utf8) }
    }

    let deploymentText = "vllm: {model: /srv/models/qwen}\n"

    func install(_ root: Root, runner: RecordingRunner = RecordingRunner(), dryRun: Bool = false, text: String? = nil) throws -> [InstallChange] {
        let yaml = text ?? deploymentText
        return try Installer(root: root.path, runner: runner).install(deployment: try Deployment.parse(yaml: yaml), deploymentText: yaml,
                                                                       systemd: .debian12, binary: Array("binary".utf8), dryRun: dryRun)
    }

    @Test("files get their modes and owners; the key file is 0640 root:vllm with a strong key")
    func modesAndOwners() throws {
        let root = try Root()
        defer { try? FileManager.default.removeItem(at: root.url) }
        let runner = RecordingRunner()
        let changes = try install(root, runner: runner)
        #expect(changes.allSatisfy { $0.kind == .created })
        #expect(try root.attributes("/etc/warden/vllm.env") == (0o640, 0, 990))
        #expect(try root.attributes("/etc/warden/warden.yaml") == (0o644, 0, 0))
        #expect(try root.attributes("/usr/local/lib/warden/start-vllm.sh") == (0o755, 0, 0))
        #expect(try root.attributes("/etc/systemd/system/vllm.service") == (0o644, 0, 0))
        #expect(try root.attributes("/usr/local/bin/warden") == (0o755, 0, 0))
        #expect(try root.attributes("/var/lib/vllm") == (0o700, 990, 990))
        #expect(try root.attributes("/var/cache/vllm") == (0o700, 990, 990))
        #expect(try root.attributes("/var/lib/warden") == (0o700, 991, 991))
        #expect(try root.attributes("/srv/models") == (0o755, 0, 0))
        #expect(try root.attributes(GrafanaDashboard.path) == (0o644, 0, 0))
        #expect(try root.read(GrafanaDashboard.path) == GrafanaDashboard.json)
        #expect(try root.read(AlertRules.path).hasPrefix("# vLLM Warden alert rules"))
        let key = try root.read("/etc/warden/vllm.env").split(separator: "\n").first { $0.hasPrefix("VLLM_API_KEY=") }
        #expect(key?.count == "VLLM_API_KEY=".count + 64)
        #expect(try root.read("/etc/warden/warden.yaml") == deploymentText)
        #expect(runner.calls.isEmpty, "no accounts or systemctl under a non-/ root")
    }

    @Test("a second run changes nothing and keeps the key; a dry run writes nothing")
    func idempotent() throws {
        let root = try Root()
        defer { try? FileManager.default.removeItem(at: root.url) }
        _ = try install(root)
        let key = try root.read("/etc/warden/vllm.env")
        let second = try install(root)
        #expect(second.allSatisfy { $0.kind == .unchanged }, "\(second.filter { $0.kind != .unchanged })")
        #expect(try root.read("/etc/warden/vllm.env") == key)

        try "VLLM_API_KEY=operator-chosen-key-0123456789abcdef0123\n".write(toFile: root.path + "/etc/warden/vllm.env", atomically: true, encoding: .utf8)
        chmod(root.path + "/etc/warden/vllm.env", 0o644)
        let fixed = try install(root)
        #expect(fixed.first { $0.path == "/etc/warden/vllm.env" }?.kind == .updated)
        #expect(try root.read("/etc/warden/vllm.env").contains("operator-chosen-key"))
        #expect(try root.attributes("/etc/warden/vllm.env").mode == 0o640)
    }

    @Test("--dry-run reports a diff of a changed unit without writing it, and never prints the key")
    func dryRunDiff() throws {
        let root = try Root()
        defer { try? FileManager.default.removeItem(at: root.url) }
        _ = try install(root)
        let before = try root.read("/etc/systemd/system/vllm.service")
        let changes = try install(root, dryRun: true, text: "vllm: {model: /srv/models/qwen, shutdown_timeout: 90}\n")
        let unit = try #require(changes.first { $0.path == "/etc/systemd/system/vllm.service" })
        #expect(unit.kind == .updated)
        #expect(unit.details.contains("- TimeoutStopSec=60"))
        #expect(unit.details.contains("+ TimeoutStopSec=120"))
        #expect(try root.read("/etc/systemd/system/vllm.service") == before)
        #expect(!changes.flatMap(\.details).contains { $0.contains("VLLM_API_KEY=") })
    }

    @Test("unknown accounts in an image root are a clear error")
    func missingAccounts() throws {
        let root = try Root()
        defer { try? FileManager.default.removeItem(at: root.url) }
        try "root:x:0:\n".write(to: root.url.appendingPathComponent("etc/group"), atomically: true, encoding: .utf8)
        #expect(throws: InstallError.self) { try install(root) }
    }

    @Test("uninstall removes units, script, binary and monitoring files, and keeps keys, models and the deployment file")
    func uninstall() throws {
        let root = try Root()
        defer { try? FileManager.default.removeItem(at: root.url) }
        _ = try install(root)
        let removed = try Installer(root: root.path, runner: RecordingRunner()).uninstall(dryRun: false)
        #expect(Set(removed.map(\.path)) == ["/etc/systemd/system/vllm.service", "/etc/systemd/system/warden-gateway.service",
                                              "/usr/local/lib/warden/start-vllm.sh", "/usr/local/bin/warden", GrafanaDashboard.path, AlertRules.path])
        #expect(FileManager.default.fileExists(atPath: root.path + "/etc/warden/vllm.env"))
        #expect(FileManager.default.fileExists(atPath: root.path + "/etc/warden/warden.yaml"))
        #expect(FileManager.default.fileExists(atPath: root.path + "/srv/models"))
    }

    @Test("the operator's own vllm.service (the guide's) is moved aside, never overwritten; uninstall leaves a unit Warden did not write")
    func foreignUnits() throws {
        let root = try Root()
        defer { try? FileManager.default.removeItem(at: root.url) }
        let units = root.path + "/etc/systemd/system"
        try FileManager.default.createDirectory(atPath: units, withIntermediateDirectories: true)
        let guide = "[Service]\nExecStart=/opt/vllm/bin/vllm serve /models/mine --api-key mine\n"
        try guide.write(toFile: units + "/vllm.service", atomically: true, encoding: .utf8)
        let dry = try install(root, dryRun: true)
        #expect(dry.contains { $0.path == "/etc/systemd/system/vllm.service" && $0.kind == .removed })
        #expect(try root.read("/etc/systemd/system/vllm.service") == guide, "a dry run moves nothing")
        let changes = try install(root)
        let setAside = try #require(changes.first { $0.path == "/etc/systemd/system/vllm.service" && $0.kind == .removed })
        #expect(setAside.details == ["not written by Warden: moved aside to /etc/systemd/system/vllm.service.before-warden (nothing of it is lost)"])
        #expect(try root.read("/etc/systemd/system/vllm.service.before-warden") == guide)
        #expect(try root.read("/etc/systemd/system/vllm.service").contains(Installer.unitMarker))
        #expect(try install(root).allSatisfy { $0.kind == .unchanged }, "Warden's own unit is not moved aside again")

        // Uninstall removes Warden's units and gives the operator's its name back.
        let restored = try Installer(root: root.path, runner: RecordingRunner()).uninstall(dryRun: false)
        #expect(try root.read("/etc/systemd/system/vllm.service") == guide)
        #expect(!FileManager.default.fileExists(atPath: units + "/vllm.service.before-warden"))
        #expect(restored.contains { $0.path == "/etc/systemd/system/vllm.service" && $0.kind == .created })

        // Installed again, then the operator puts their own unit in place by hand: uninstall leaves it, unstopped.
        _ = try install(root)
        try FileManager.default.removeItem(atPath: units + "/vllm.service")
        try FileManager.default.removeItem(atPath: units + "/vllm.service.before-warden")
        try guide.write(toFile: units + "/vllm.service", atomically: true, encoding: .utf8)
        let runner = RecordingRunner()
        let removed = try Installer(root: root.path, runner: runner).uninstall(dryRun: false)
        #expect(try root.read("/etc/systemd/system/vllm.service") == guide)
        #expect(removed.contains { $0.path == "/etc/systemd/system/vllm.service" && $0.kind == .unchanged })
        #expect(removed.contains { $0.path == "/etc/systemd/system/warden-gateway.service" && $0.kind == .removed })
    }

    @Test("a second install after an edit names the services whose files changed; one that changed nothing names none")
    func servicesToRestart() throws {
        let root = try Root()
        defer { try? FileManager.default.removeItem(at: root.url) }
        let installer = Installer(root: root.path, runner: RecordingRunner())
        let deployment = try Deployment.parse(yaml: deploymentText)
        #expect(installer.servicesToRestart(after: try install(root), deployment: deployment) == ["vllm.service", "warden-gateway.service"])
        #expect(installer.servicesToRestart(after: try install(root), deployment: deployment).isEmpty)
        let edited = "vllm: {model: /srv/models/qwen, port: 8001}\n"
        #expect(installer.servicesToRestart(after: try install(root, text: edited), deployment: try Deployment.parse(yaml: edited))
                == ["vllm.service", "warden-gateway.service"], "a new port: vLLM's script and the gateway's upstream")
        #expect(installer.running(["vllm.service"]).isEmpty, "an image root runs nothing")
    }

    @Test("ownership is never changed through a link another account could plant; the operator's own link is followed")
    func linksInDirectoriesOthersWrite() throws {
        let root = try Root()
        defer { try? FileManager.default.removeItem(at: root.url) }
        let shared = root.path + "/shared"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        let victim = root.path + "/victim"
        try "root's".write(toFile: victim, atomically: true, encoding: .utf8)
        #expect(chmod(victim, 0o600) == 0)
        #expect(symlink(victim, shared + "/planted") == 0)
        #expect(chmod(shared, 0o777) == 0)
        #expect(throws: InstallError.self) { try Installer.setOwnership(shared + "/planted", mode: 0o644, uid: nil, gid: nil, names: "x") }
        var info = stat()
        #expect(stat(victim, &info) == 0 && info.st_mode & 0o777 == 0o600, "the link's target is untouched")
        #expect(chmod(shared, 0o755) == 0)
        if getuid() == 0 {
            // Only root may write the directory (root owns it when the tests run as root): the link is the operator's.
            try Installer.setOwnership(shared + "/planted", mode: 0o640, uid: nil, gid: nil, names: "x")
            #expect(stat(victim, &info) == 0 && info.st_mode & 0o777 == 0o640)
        }
    }

    @Test("the line diff shows changed lines with context")
    func lineDiff() {
        #expect(LineDiff.render(old: "a\nb\nc\nd", new: "a\nB\nc\nd") == ["  a", "- b", "+ B", "  c"])
    }
}
