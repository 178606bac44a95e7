import Testing
import WardenAudit

@Suite("what audit reads: command lines, units, socket tables")
struct ParsingTests {
    @Test("vllm serve and the api_server module are recognised; options in both spellings")
    func invocations() throws {
        let serve = try #require(VLLMInvocation(argv: ["/venv/bin/python", "/venv/bin/vllm", "serve", "/m", "--api_key", "a", "b", "--port=9000", "--trust-remote-code"]))
        #expect(serve.model == "/m" && serve.port == 9000 && serve.host == nil && serve.venv == "/venv")
        #expect(serve.values("--api-key") == ["a", "b"] && serve.has("--trust-remote-code"))
        let module = try #require(VLLMInvocation(argv: ["python3", "-m", "vllm.entrypoints.openai.api_server", "--model", "org/name", "--host", "127.0.0.1"]))
        #expect(module.model == "org/name" && module.host == "127.0.0.1" && module.port == 8000)
        #expect(VLLMInvocation(argv: ["/usr/bin/python3", "server.py", "serve"]) == nil)
        let script = try #require(VLLMInvocation(script: "#!/bin/sh\n# vllm serve commented\nexec '/opt/v env/bin/vllm' serve \\\n  /m --host \"0.0.0.0\"\n"))
        #expect(script.executable == "/opt/v env/bin/vllm" && script.arguments == ["/m", "--host", "0.0.0.0"])
    }

    @Test("unit directives: drop-ins append, an empty assignment resets, continuation lines join")
    func directives() {
        let unit = UnitDirectives(text: "# /etc/systemd/system/x.service\n[Service]\nReadWritePaths=/a\nExecStart=/bin/vllm serve \\\n  /m\n# drop-in\n[Service]\nReadWritePaths=\nReadWritePaths=/b\nCapabilityBoundingSet=\n")
        #expect(unit.values("ReadWritePaths") == ["/b"])
        #expect(unit.values("CapabilityBoundingSet") == [""])
        #expect(unit.last("ExecStart") == "/bin/vllm serve  /m")
        #expect(unit.last("User") == nil)
    }

    @Test("/proc/net/tcp6 rows decode to addresses; only LISTEN rows count")
    func socketTable() {
        let table = """
          sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
           0: 00000000000000000000000001000000:1F40 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000   990        0 5001 1
           1: 0000000000000000FFFF00000100007F:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5002 1
           2: 00000000000000000000000000000000:1F41 00000000000000000000000000000000:0000 01 00000000:00000000 00:00000000 00000000     0        0 5003 1
        """
        var host = FakeAuditHost()
        host.file("/proc/net/tcp6", table)
        host.process(7, ["/v/bin/vllm", "serve", "/m", "--port", "8000", "--host", "::1"], unit: nil, environment: [:], sockets: [5001])
        let target = try? Audit.run(host: host).target
        #expect(target?.apiSockets.map(\.description) == ["[::1]:8000"])
        #expect(target?.apiSockets.first?.isLoopback == true)
    }
}
