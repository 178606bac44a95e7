import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Testing
import WardenAudit
import WardenConfig
import WardenPreflight
import WardenSystemd

@Suite("warden audit of Warden's own deployment")
struct WardenDeploymentTests {
    static let yaml = "vllm:\n  model: /srv/models/qwen\n"

    /// A host running vLLM as Warden's unit and start script start it, from the given files.
    static func host(unit: String, script: String, keyFile: (text: String, info: FileInfo)) throws -> FakeAuditHost {
        let deployment = try Deployment.parse(yaml: yaml)
        var host = FakeAuditHost()
        host.unit("vllm.service", text: unit, mainPID: 5151, exposure: 1.4)
        host.file("/usr/local/lib/warden/start-vllm.sh", script, mode: 0o755)
        host.file("/etc/warden/vllm.env", keyFile.text)
        host.files["/etc/warden/vllm.env"] = keyFile.info
        host.vllmVersion("0.22.1")
        host.file("/srv/models/qwen/config.json", "{}")
        host.file("/srv/models/qwen/model.safetensors", "weights")
        host.writable = ["/srv/models/qwen", "/var/lib/vllm", "/var/cache/vllm"]
        host.directory("/var/lib/vllm")
        host.directory("/var/cache/vllm")
        let invocation = try #require(VLLMInvocation(script: script))
        var environment = Dictionary(deployment.vllmEnvironment.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
        environment["VLLM_API_KEY"] = String(keyFile.text.split(separator: "\n").first { $0.hasPrefix("VLLM_API_KEY=") }?.dropFirst(13) ?? "")
        host.process(5151, [invocation.executable, "serve"] + invocation.arguments, unit: "vllm.service", environment: environment, sockets: [900])
        host.listening([("127.0.0.1", 8000, 900)])
        host.routes = ["/v1/models": 401, "/tokenize": 405, "/pause": 405, "/invocations": 405, "/metrics": 200]
        return host
    }

    @Test("Warden's rendered units produce no finding at high or above, and no sandbox gap")
    func renderedUnits() throws {
        let units = UnitRenderer.render(try Deployment.parse(yaml: Self.yaml), systemd: .debian12)
        let key = "VLLM_API_KEY=" + String(repeating: "0123456789abcdef", count: 4) + "\n"
        let host = try Self.host(unit: units.vllmService, script: units.startScript, keyFile: (key, FileInfo(kind: .regular, mode: 0o640, gid: 990)))
        let report = try Audit.run(host: host)
        #expect(report.findings(atLeast: .high).map(\.id) == [])
        #expect(!report.findings.contains { $0.id.hasPrefix("unit.") }, "\(report.findings.map(\.id))")
        #expect(report.findings.contains { $0.id == "exposure.open-routes" && $0.severity == .low }, "loopback only: local users")
    }

    @Test("a Warden install into a temporary root produces no finding at high or above")
    func installedRoot() throws {
        let root = FileManager.default.temporaryDirectory.path + "/warden-audit-root-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try "root:x:0:0::/root:/bin/sh\nvllm:x:990:990::/var/lib/vllm:/usr/sbin/nologin\nwarden:x:991:991::/var/lib/warden:/usr/sbin/nologin\n"
            .write(toFile: root + "/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\nvllm:x:990:\nwarden:x:991:\n".write(toFile: root + "/etc/group", atomically: true, encoding: .utf8)
        _ = try Installer(root: root, runner: CannedRunner(outputs: [:])).install(deployment: try Deployment.parse(yaml: Self.yaml), deploymentText: Self.yaml,
                                                                                  systemd: .debian12, binary: nil, dryRun: false)
        func read(_ path: String) throws -> String { try String(contentsOfFile: root + path, encoding: .utf8) }
        var status = stat()
        #expect(stat(root + "/etc/warden/vllm.env", &status) == 0)
        let keyInfo = FileInfo(kind: .regular, mode: UInt32(status.st_mode & 0o7777), uid: status.st_uid, gid: status.st_gid)
        let host = try Self.host(unit: read("/etc/systemd/system/vllm.service"), script: read("/usr/local/lib/warden/start-vllm.sh"),
                                 keyFile: (try read("/etc/warden/vllm.env"), keyInfo))
        let report = try Audit.run(host: host, deployment: try Deployment.parse(yaml: Self.yaml))
        #expect(report.findings(atLeast: .high).map(\.id) == [])
        #expect(!report.findings.contains { $0.id == "secrets.envfile" }, "the key file is 0640 root:vllm with a generated key")
    }
}
