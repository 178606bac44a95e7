import Testing

@Suite("warden config (the real binary)")
struct ConfigCommandTests {
    @Test("config check passes on config example output and on a one-line file")
    func checkValid() throws {
        let scratch = try ScratchDirectory()
        let example = try BuiltProduct.run("warden", ["config", "example"])
        #expect(example.status == 0)
        let examplePath = try scratch.write("example.yaml", example.stdout)
        #expect(try BuiltProduct.run("warden", ["config", "check", "--config", examplePath]).status == 0)
        let oneLine = try scratch.write("one.yaml", "vllm: {model: /srv/models/qwen}\n")
        #expect(try BuiltProduct.run("warden", ["config", "check", "--config", oneLine]).status == 0)
    }

    @Test("WARDEN_CONFIG is read when --config is absent")
    func environmentVariable() throws {
        let scratch = try ScratchDirectory()
        let path = try scratch.write("w.yaml", "vllm: {model: m, port: 9000}\n")
        let shown = try BuiltProduct.run("warden", ["config", "show", "--format", "json"], environment: ["WARDEN_CONFIG": path])
        #expect(shown.status == 0)
        #expect(shown.stdout.contains("\"port\" : 9000"))
    }

    @Test("each kind of broken file exits 2 naming the key path and line", arguments: [
        ("vllm:\n  model: m\n  tensor_paralel_size: 2\n", "line 3, column 3: vllm.tensor_paralel_size: unknown key; did you mean 'tensor_parallel_size'?"),
        ("vllm:\n  model: m\n  port: high\n", "line 3, column 9: vllm.port: expected a whole number"),
        ("vllm:\n  model: m\n  gpu_memory_utilization: 1.5\n", "line 3, column 27: vllm.gpu_memory_utilization: 1.5 is out of range; allowed: 0.05 to 1.0"),
        ("vllm:\n  model: m\n   port: 1\n", "line 3"),
        ("vllm: {model: m}\ngateway:\n  allowed_endpoints:\n    - BOGUS\n", "line 4, column 7: gateway.allowed_endpoints[0]: 'BOGUS' must be `METHOD /path`"),
        ("vllm:\n\tmodel: m\n", "line 2, column 1: YAML syntax error: tabs are not allowed in YAML indentation"),
    ])
    func brokenFiles(yaml: String, expected: String) throws {
        let scratch = try ScratchDirectory()
        let path = try scratch.write("bad.yaml", yaml)
        let result = try BuiltProduct.run("warden", ["config", "check", "--config", path])
        #expect(result.status == 2)
        #expect(result.stderr.contains(expected), "stderr was: \(result.stderr)")
    }

    @Test("every problem is printed in one run")
    func severalProblems() throws {
        let scratch = try ScratchDirectory()
        let path = try scratch.write("bad.yaml", "vllm:\n  model: m\n  port: 70000\n  shutdown_timeout: -3\ngateway:\n  lisen: x\n")
        let result = try BuiltProduct.run("warden", ["config", "check", "--config", path])
        #expect(result.status == 2)
        #expect(result.stderr.contains("3 problems"))
    }

    @Test("a missing file and a usage error both exit 2")
    func usageErrors() throws {
        let missing = try BuiltProduct.run("warden", ["config", "check", "--config", "/nonexistent/w.yaml"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("warden config example"))
        #expect(try BuiltProduct.run("warden", ["config", "show", "--format", "xml"]).status == 2)
        #expect(try BuiltProduct.run("warden", ["no-such-command"]).status == 2)
    }

    @Test("--help lists the subcommands and the exit codes; --version prints one")
    func helpAndVersion() throws {
        let help = try BuiltProduct.run("warden", ["--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("config"))
        #expect(help.stdout.contains("2 usage or configuration error"))
        let version = try BuiltProduct.run("warden", ["--version"])
        #expect(version.status == 0)
        #expect(!version.stdout.isEmpty)
    }

    @Test("warnings are printed apart from errors and do not fail the check: admin off loopback, vLLM off loopback, no model")
    func warnings() throws {
        let scratch = try ScratchDirectory()
        let path = try scratch.write("w.yaml", "vllm: {model: /nonexistent/qwen, host: 0.0.0.0}\ngateway: {admin_listen: 0.0.0.0:9091}\n")
        let result = try BuiltProduct.run("warden", ["config", "check", "--config", path])
        #expect(result.status == 0)
        #expect(result.stdout.contains("valid (3 warnings)"))
        for expected in ["warning: gateway.admin_listen: 0.0.0.0:9091 is reachable from other hosts",
                         "warning: vllm.host: vLLM listens on 0.0.0.0", "warning: vllm.model: /nonexistent/qwen does not exist"] {
            #expect(result.stderr.contains(expected), "\(result.stderr)")
        }
        let clean = try scratch.write("clean.yaml", "vllm: {model: \(scratch.url.path)}\n")
        #expect(try BuiltProduct.run("warden", ["config", "check", "--config", clean]).stderr.isEmpty)
    }

    @Test("config show writes durations and numbers as the example does; a mistyped subcommand gets a suggestion")
    func showForms() throws {
        let scratch = try ScratchDirectory()
        let path = try scratch.write("w.yaml", "vllm: {model: m}\ngateway: {drain_timeout: 2m, bans: {ban_time: 3600}}\n")
        let shown = try BuiltProduct.run("warden", ["config", "show", "--config", path]).stdout
        for line in ["drain_timeout: 2m", "ban_time: 1h", "write_timeout: 60s", "shutdown_timeout: 30s", "gpu_memory_utilization: 0.9",
                     "max_ban_time: 7d"] {
            #expect(shown.contains(line), "missing \(line)")
        }
        let again = try scratch.write("again.yaml", shown)
        #expect(try BuiltProduct.run("warden", ["config", "check", "--config", again]).status == 0, "what show prints reads back")
        let typo = try BuiltProduct.run("warden", ["confg"])
        #expect(typo.status == 2 && typo.stderr.contains("Did you mean 'config'?"))
        #expect(try BuiltProduct.run("warden", ["keys", "lst"]).stderr.contains("Did you mean 'list'?"))
    }
}
