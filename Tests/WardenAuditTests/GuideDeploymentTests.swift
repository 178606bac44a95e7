import FoundationEssentials
import Testing
import WardenAudit

/// The guide's own files ("Production Hardening for vLLM", Part I), read from the shared reference directory.
enum Guide {
    static let directory = "/work/shared/reference/guide"
    static func read(_ name: String) throws -> String { try String(contentsOfFile: directory + "/" + name, encoding: .utf8) }

    /// A host running the guide's unit. Its start script is not published; this stand-in starts vLLM the way the
    /// guide's unit implies (port 8000 from preflight-check.sh, /opt/vllm/.venv, /opt/models).
    static func host() throws -> FakeAuditHost {
        var host = FakeAuditHost()
        host.unit("vllm.service", text: try read("vllm.service"), mainPID: 4242, exposure: 4.3)
        host.file("/opt/vllm/preflight-check.sh", try read("preflight-check.sh"), mode: 0o755)
        host.file("/opt/vllm/start-vllm.sh", "#!/bin/bash\nexec /opt/vllm/.venv/bin/vllm serve /opt/models/Qwen2.5-7B-Instruct \\\n  --host 0.0.0.0 --port 8000 --api-key \"$VLLM_API_KEY\"\n", mode: 0o755)
        host.file("/etc/vllm/vllm.env", "VLLM_API_KEY=changeme-vllm-key\n", mode: 0o644)
        host.vllmVersion("0.8.4")
        host.file("/opt/models/Qwen2.5-7B-Instruct/config.json", "{\"architectures\": [\"Qwen2ForCausalLM\"]}")
        host.file("/opt/models/Qwen2.5-7B-Instruct/pytorch_model.bin", "pickle")
        host.writable = ["/opt/models/Qwen2.5-7B-Instruct"]
        let argv = ["/opt/vllm/.venv/bin/python3", "/opt/vllm/.venv/bin/vllm", "serve", "/opt/models/Qwen2.5-7B-Instruct",
                    "--host", "0.0.0.0", "--port", "8000", "--api-key", "changeme-vllm-key"]
        host.process(4242, argv, unit: "vllm.service", environment: ["VLLM_API_KEY": "changeme-vllm-key"], sockets: [777])
        host.listening([("0.0.0.0", 8000, 777), ("127.0.0.1", 22, 12)])
        host.routes = ["/v1/models": 401, "/tokenize": 405, "/pause": 405, "/invocations": 405, "/metrics": 200, "/docs": 200]
        return host
    }
}

@Suite("warden audit of the guide's deployment")
struct GuideDeploymentTests {
    @Test("the guide's unit, script and key file produce the unit, secret, exposure, setting and advisory findings")
    func guideFindings() throws {
        let report = try Audit.run(host: Guide.host())
        let severities = Dictionary(report.findings.map { ($0.id, $0.severity) }, uniquingKeysWith: { first, _ in first })
        let expected: [String: Severity] = [
            "unit.exposure": .medium, "unit.sandbox": .medium, "unit.killmode": .medium, "unit.no-drain": .low, "unit.execstartpre": .low,
            "secrets.cmdline-key": .high, "secrets.weak-key": .high, "secrets.envfile": .high,
            "exposure.listen": .high, "exposure.open-routes": .high,
            "settings.model-writable": .medium, "settings.pickle-weights": .high, "settings.hub-online": .low, "settings.usage-stats": .low,
            "advisory.GHSA-wr9h-g72x-mwhm": .high, "advisory.GHSA-94f4-hr76-p5j6": .critical, "advisory.GHSA-hj4w-hm2g-p6w5": .low,
        ]
        for (id, severity) in expected { #expect(severities[id] == severity, "\(id)") }
        #expect(severities["unit.root"] == nil && severities["secrets.no-key"] == nil && severities["exposure.dev-routes"] == nil)
        #expect(report.target.unit == "vllm.service" && report.target.pid == 4242 && report.target.version == "0.8.4")
    }

    @Test("the sandbox diff lists what Warden's unit adds; keys never appear in full")
    func evidence() throws {
        let report = try Audit.run(host: Guide.host())
        let sandbox = try #require(report.findings.first { $0.id == "unit.sandbox" })
        #expect(sandbox.evidence.contains("+ IPAddressDeny=any"))
        #expect(sandbox.evidence.contains("+ ProtectClock=true"))
        #expect(!sandbox.evidence.contains { $0.contains("ProtectHome") }, "the guide already sets it")
        let open = try #require(report.findings.first { $0.id == "exposure.open-routes" })
        #expect(open.evidence.contains("GET /tokenize → 405 (exists; it is a POST route)"))
        #expect(!open.evidence.contains { $0.contains("/v1/models") })
        #expect(!report.text.contains("changeme-vllm-key") && !report.json.contains("changeme-vllm-key"))
        #expect(report.text.contains("HIGH    secrets.cmdline-key  API key visible in the process command line"))
        #expect(report.findings.first?.severity == .critical, "worst first")
    }

    @Test("without the process, the command line comes from the start script ExecStart= runs")
    func stoppedUnit() throws {
        var host = try Guide.host()
        host.processTable = [:]
        host.commandOutputs["systemctl list-units --type=service --all --plain --no-legend --no-pager"] = "ssh.service loaded active running SSH\nvllm.service loaded inactive dead vLLM\n"
        let report = try Audit.run(host: host)
        #expect(report.target.unit == "vllm.service")
        #expect(report.target.invocationSource == "/opt/vllm/start-vllm.sh (ExecStart=)")
        #expect(report.findings.contains { $0.id == "secrets.cmdline-key" && $0.evidence[0].contains("chan…") }, "$VLLM_API_KEY resolved from the EnvironmentFile")
        #expect(report.findings.contains { $0.id == "exposure.listen" })

        // The key file read as systemd reads it: a `;` comment, spaces around `=`, a quoted value.
        host.file("/etc/vllm/vllm.env", "; written by hand\nVLLM_API_KEY = \"changeme-vllm-key\"\n", mode: 0o644)
        let handWritten = try Audit.run(host: host)
        #expect(handWritten.findings.contains { $0.id == "secrets.cmdline-key" && $0.evidence[0].contains("chan…") }, "\(handWritten.findings.map(\.evidence))")
    }

    @Test("credentials in the unit's Environment= and a Hugging Face token on the command line are found, masked; cache settings are not")
    func credentialsInTheUnit() throws {
        var host = try Guide.host()
        let unit = try Guide.read("vllm.service").replacing("EnvironmentFile=/etc/vllm/vllm.env", with: """
            EnvironmentFile=/etc/vllm/vllm.env
            Environment=HF_HOME=/var/cache/vllm/hf "HF_TOKEN=hf_abcdefghijklmnop" WANDB_API_KEY=wandb-0123456789
            Environment=HF_TOKEN_PATH=/etc/vllm/hf-token
            """)
        host.unit("vllm.service", text: unit, mainPID: 4242, exposure: 4.3)
        var argv = try #require(host.processTable[4242]).argv
        argv += ["--hf-token", "hf_zyxwvutsrqponmlk"]
        host.process(4242, argv, unit: "vllm.service", environment: ["VLLM_API_KEY": "changeme-vllm-key"], sockets: [777])
        let report = try Audit.run(host: host)
        let inUnit = try #require(report.findings.first { $0.id == "secrets.unit-key" })
        #expect(inUnit.severity == .high)
        #expect(inUnit.evidence.prefix(2) == ["Environment=HF_TOKEN=hf_a…<19 characters>", "Environment=WANDB_API_KEY=wand…<16 characters>"])
        #expect(inUnit.evidence.count == 3, "HF_HOME and HF_TOKEN_PATH are no secrets: \(inUnit.evidence)")
        let onCommandLine = try #require(report.findings.first { $0.id == "secrets.cmdline-token" })
        #expect(onCommandLine.evidence == ["--hf-token hf_z…<19 characters> in process 4242"])
        for secret in ["hf_abcdefghijklmnop", "wandb-0123456789", "hf_zyxwvutsrqponmlk"] {
            #expect(!report.text.contains(secret) && !report.json.contains(secret))
        }
    }

    @Test("JSON names what was found and each finding's fields")
    func json() throws {
        let text = try Audit.run(host: Guide.host()).json
        #expect(text.hasPrefix("{\"vllm\":{\"unit\":\"vllm.service\",\"pid\":4242,"))
        #expect(text.contains("\"advisory_table_date\":\"\(AdvisoryTable.date)\""))
        #expect(text.contains("{\"id\":\"secrets.cmdline-key\",\"severity\":\"high\",\"title\":\"API key visible in the process command line\",\"evidence\":["))
        #expect(text.contains("\"warden_fix\":\"warden install"))
    }

    @Test("no vLLM anywhere is an error that says how to name it")
    func nothingFound() {
        #expect(throws: AuditError.self) { try Audit.run(host: FakeAuditHost()) }
    }
}
