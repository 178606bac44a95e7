import Foundation
import Testing
import WardenConfig
@testable import WardenSystemd

/// The deployment the golden files were rendered from: the printed example with a few non-defaults.
func goldenDeployment() throws -> Deployment {
    var deployment = try Deployment.parse(yaml: Deployment.exampleYAML)
    deployment.vllm.maxModelLen = 32_768
    deployment.vllm.extraArgs = ["--enable-prefix-caching"]
    deployment.vllm.environment = ["CUDA_DEVICE_ORDER": "PCI_BUS_ID"]
    return deployment
}

@Suite("warden unit render")
struct UnitRenderingTests {
    static let goldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    /// Compares with `Golden/<name>`; `WARDEN_UPDATE_GOLDEN=1` rewrites the file instead (review the diff before committing).
    func expectGolden(_ text: String, _ name: String) throws {
        let url = Self.goldenDirectory.appendingPathComponent(name)
        if ProcessInfo.processInfo.environment["WARDEN_UPDATE_GOLDEN"] == "1" {
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        let golden = try String(contentsOf: url, encoding: .utf8)
        #expect(text == golden, "rendered \(name) differs from the golden file")
    }

    @Test("units match the golden files for systemd 252 and 256", arguments: [252, 256])
    func golden(version: Int) throws {
        let units = UnitRenderer.render(try goldenDeployment(), systemd: SystemdVersion(version))
        try expectGolden(units.vllmService, "vllm-\(version).service")
        try expectGolden(units.gatewayService, "warden-gateway-\(version).service")
        try expectGolden(units.startScript, "start-vllm.sh")
    }

    @Test("directives newer than the target systemd are left out")
    func versionGating() throws {
        let deployment = try goldenDeployment()
        let old = UnitRenderer.render(deployment, systemd: .debian12)
        #expect(!old.vllmService.contains("RestartSteps"))
        #expect(old.vllmService.contains("PrivateTmp=true"))
        let newer = UnitRenderer.render(deployment, systemd: SystemdVersion(256))
        #expect(newer.vllmService.contains("RestartSteps=5"))
        #expect(newer.vllmService.contains("PrivateTmp=true"))
        let newest = UnitRenderer.render(deployment, systemd: SystemdVersion(257))
        #expect(newest.vllmService.contains("PrivateTmp=disconnected"))
        #expect(newest.gatewayService.contains("ProtectControlGroups=private"))
    }

    @Test("the start script execs vllm serve with the deployment's flags and never the key")
    func startScript() throws {
        var deployment = try goldenDeployment()
        deployment.vllm.extraArgs = ["--chat-template", "/srv/templates/it's.jinja"]
        let script = UnitRenderer.render(deployment, systemd: .debian12).startScript
        #expect(script.contains("exec /opt/vllm/.venv/bin/vllm serve \\"))
        #expect(script.contains("    --host 127.0.0.1 \\\n"))
        #expect(script.contains("    --shutdown-timeout 30 \\\n"))
        #expect(script.contains("    --chat-template '/srv/templates/it'\\''s.jinja'\n"))
        #expect(script.contains("'/srv/templates/it'\\''s.jinja'"))
        #expect(!script.contains("--api-key"))
        let lines = script.split(separator: "\n")
        #expect(lines.last?.hasSuffix("\\") == false)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("start-\(UUID().uuidString).sh").path
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try ProcessRunner().run("/bin/sh", ["-n", path]).status == 0, "the start script must parse")
    }

    @Test("stop timeout exceeds vLLM's drain; KillMode is mixed; caches are writable and models read-only")
    func lifecycleAndPaths() throws {
        var deployment = try goldenDeployment()
        deployment.vllm.shutdownTimeout = 120
        let unit = UnitRenderer.render(deployment, systemd: .debian12).vllmService
        #expect(unit.contains("TimeoutStopSec=150\n"))
        #expect(unit.contains("KillMode=mixed\n"))
        #expect(unit.contains("StateDirectory=vllm\n"))
        #expect(unit.contains("CacheDirectory=vllm\n"))
        #expect(unit.contains("ReadOnlyPaths=/srv/models\n"))
        #expect(unit.contains("Environment=\"TRITON_CACHE_DIR=/var/cache/vllm/triton\"\n"))
        #expect(unit.contains("Environment=\"VLLM_NO_USAGE_STATS=1\"\n"))
        #expect(unit.contains("Environment=\"HF_HUB_OFFLINE=1\"\n"))
        // Preflight runs in the start script (the main process), where RestartPreventExitStatus= applies to it.
        #expect(!unit.contains("ExecStartPre="))
        #expect(unit.contains("ExecStart=/usr/local/lib/warden/start-vllm.sh\n"))
        #expect(unit.contains("RestartPreventExitStatus=2 3\n"))
        let script = UnitRenderer.render(deployment, systemd: .debian12).startScript
        #expect(script.contains("\n/usr/local/bin/warden preflight --config /etc/warden/warden.yaml || exit $?\nexec "))
        #expect(unit.contains("DevicePolicy=closed\n"))
        #expect(unit.contains("DeviceAllow=char-nvidia-uvm rw\n"))
        #expect(unit.contains("IPAddressDeny=any\nIPAddressAllow=localhost\n"))
        deployment.paths.state = "/srv/vllm-state"
        #expect(UnitRenderer.render(deployment, systemd: .debian12).vllmService.contains("ReadWritePaths=/srv/vllm-state\n"))
    }

    @Test("MemoryDenyWriteExecute is on by default and can be turned off; peers extend IPAddressAllow")
    func options() throws {
        var deployment = try goldenDeployment()
        #expect(UnitRenderer.render(deployment, systemd: .debian12).vllmService.contains("MemoryDenyWriteExecute=true"))
        deployment.systemd.memoryDenyWriteExecute = false
        deployment.systemd.ipAddressAllow = ["10.0.0.0/24"]
        let unit = UnitRenderer.render(deployment, systemd: .debian12).vllmService
        #expect(!unit.contains("MemoryDenyWriteExecute"))
        #expect(unit.contains("IPAddressAllow=localhost 10.0.0.0/24\n"))
    }

    @Test("the gateway unit has no devices; a port below 1024 gets only CAP_NET_BIND_SERVICE")
    func gateway() throws {
        var deployment = try goldenDeployment()
        let unit = UnitRenderer.render(deployment, systemd: .debian12).gatewayService
        #expect(unit.contains("PrivateDevices=true\n"))
        #expect(!unit.contains("DeviceAllow"))
        #expect(unit.contains("CapabilityBoundingSet=\n"))
        #expect(unit.contains("TimeoutStopSec=45\n"))
        deployment.gateway.listen = "0.0.0.0:443"
        let exposed = UnitRenderer.render(deployment, systemd: .debian12).gatewayService
        #expect(exposed.contains("CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"))
        #expect(!exposed.contains("IPAddressDeny"))
    }

    @Test("the gateway's firewall lets it reach vLLM wherever vLLM listens, and is left off when a peer has no address to pin")
    func gatewayFirewallPeers() throws {
        var deployment = try goldenDeployment()
        #expect(UnitRenderer.render(deployment, systemd: .debian12).gatewayService.contains("IPAddressDeny=any\nIPAddressAllow=localhost\n"))
        deployment.gateway.upstream = "http://10.0.0.5:8000"
        #expect(UnitRenderer.render(deployment, systemd: .debian12).gatewayService.contains("IPAddressDeny=any\nIPAddressAllow=localhost 10.0.0.5\n"),
                "vLLM on the box's LAN address: allowed, or every request would fail with 502")
        deployment.gateway.upstream = "http://[fd00::5]:8000"
        #expect(UnitRenderer.render(deployment, systemd: .debian12).gatewayService.contains("IPAddressAllow=localhost fd00::5\n"))
        deployment.gateway.upstream = "http://gpu-box:8000"
        #expect(!UnitRenderer.render(deployment, systemd: .debian12).gatewayService.contains("IPAddressDeny"), "a host name cannot be pinned")
        deployment.gateway.keyStore = "/srv/warden-keys/keys.sqlite"
        let elsewhere = UnitRenderer.render(deployment, systemd: .debian12).gatewayService
        #expect(elsewhere.contains("ReadWritePaths=/srv/warden-keys\n"), "ProtectSystem=strict would leave a key store elsewhere read-only")
        #expect(elsewhere.contains("RequiresMountsFor=/srv/warden-keys\n"), "a key store on its own mount is mounted first")
        deployment.gateway.upstream = "http://127.0.0.1:8000"
        deployment.gateway.adminListen = "10.0.0.2:9091"
        #expect(!UnitRenderer.render(deployment, systemd: .debian12).gatewayService.contains("IPAddressDeny"), "scrapers come from elsewhere")
    }

    @Test("systemctl --version is parsed")
    func versionParsing() {
        #expect(SystemdVersion(systemctlOutput: "systemd 252 (252.38-1~deb12u1)\n+PAM +AUDIT") == SystemdVersion(252))
        #expect(SystemdVersion(systemctlOutput: "garbage") == nil)
    }
}
