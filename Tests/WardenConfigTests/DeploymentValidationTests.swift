import Testing
@testable import WardenConfig

@Suite("Deployment file validation")
struct DeploymentValidationTests {
    private func issues(_ yaml: String) -> [ConfigIssue] {
        do {
            _ = try Deployment.parse(yaml: yaml)
            return []
        } catch {
            return error.issues
        }
    }

    @Test("a file holding only vllm.model is valid and gets every default")
    func minimalFile() throws {
        let deployment = try Deployment.parse(yaml: "vllm:\n  model: /srv/models/Qwen2.5-7B-Instruct\n")
        #expect(deployment.vllm.servedModelName == "Qwen2.5-7B-Instruct")
        #expect(deployment.vllm.host == "127.0.0.1")
        #expect(deployment.vllm.port == 8000)
        #expect(deployment.vllm.gpuMemoryUtilization == 0.9)
        #expect(deployment.gateway.upstream == "http://127.0.0.1:8000")
        #expect(deployment.gateway.allowedEndpoints == Deployment.Gateway.defaultAllowedEndpoints)
        #expect(deployment.paths.state == "/var/lib/vllm")
    }

    @Test("directories install makes private to a service are never ones the system shares, nor under trees the units hide")
    func privateDirectories() throws {
        let base = "vllm: {model: /srv/models/m}\n"
        for (yaml, path) in [("gateway: {key_store: /var/lib/keys.sqlite}", "gateway.key_store"), ("gateway: {key_store: /keys.sqlite}", "gateway.key_store"),
                             ("paths: {state: /var/lib/}", "paths.state"), ("paths: {cache: /srv}", "paths.cache"),
                             ("gateway: {key_store: /home/ops/keys.sqlite}", "gateway.key_store")] {
            let found = issues(base + yaml + "\n")
            #expect(found.count == 1 && found.first?.path == path, "\(yaml): \(found)")
        }
        #expect(issues(base + "gateway: {key_store: /var/lib/keys.sqlite}\n").first?.message.contains("give it a directory of its own (e.g. /var/lib/warden)") == true)
        let own = try Deployment.parse(yaml: base + "gateway: {key_store: /srv/warden-keys/keys.sqlite}\npaths: {state: /srv/vllm-state}\n")
        #expect(own.gateway.keyStore == "/srv/warden-keys/keys.sqlite" && own.paths.state == "/srv/vllm-state")
    }

    @Test("the one-line flow form is valid too")
    func oneLineFile() throws {
        let deployment = try Deployment.parse(yaml: "vllm: {model: meta-llama/Llama-3.1-8B-Instruct}")
        #expect(deployment.vllm.servedModelName == "Llama-3.1-8B-Instruct")
    }

    @Test("the printed example is valid and equals the defaults")
    func exampleIsValid() throws {
        let example = try Deployment.parse(yaml: Deployment.exampleYAML)
        var expected = Deployment(vllm: .init(model: "/srv/models/Qwen2.5-7B-Instruct"))
        expected.gateway.bans.findTime = 600
        #expect(example == expected)
    }

    @Test("the upstream follows vllm.host and vllm.port unless set")
    func upstreamDefault() throws {
        let deployment = try Deployment.parse(yaml: "vllm: {model: m, host: '::1', port: 8001}")
        #expect(deployment.gateway.upstream == "http://[::1]:8001")
    }

    @Test("a misspelled key is an error with its path, line, column and a suggestion")
    func misspelledKey() {
        let found = issues("vllm:\n  model: m\n  gpu_memory_utilisation: 0.8\n")
        #expect(found.count == 1)
        let issue = found[0]
        #expect(issue.path == "vllm.gpu_memory_utilisation")
        #expect(issue.line == 3)
        #expect(issue.column == 3)
        #expect(issue.message.contains("did you mean 'gpu_memory_utilization'"))
    }

    @Test("a control character in any string is an error (a line break would inject a directive into the units); environment names are checked")
    func controlCharacters() {
        let injected = issues(#"vllm: {model: m, env_file: "/etc/w\nExecStartPre=/bin/evil"}"#)
        #expect(injected.count == 1)
        #expect(injected.first?.path == "vllm.env_file")
        #expect(injected.first?.message.contains("a line break") == true)
        #expect(issues(#"vllm: {model: "m\u0000"}"#).first?.path == "vllm.model")
        #expect(issues(#"vllm: {model: "m\u0085"}"#).first?.path == "vllm.model", "C1 controls too (NEL)")
        #expect(issues(#"vllm: {model: m, extra_args: ["--x", "a\tb"]}"#).first?.path == "vllm.extra_args[1]")
        #expect(issues(#"vllm: {model: m, environment: {"A\nB": x}}"#).count == 1)
        #expect(issues(#"vllm: {model: m, environment: {A: "x\ry"}}"#).first?.message.contains("line break") == true)
        #expect(issues("vllm: {model: m, environment: {'A B=': x}}").first?.message.contains("not a variable name") == true)
        #expect(issues("vllm: {model: m, environment: {9A: x}}").count == 1)
        #expect(issues("vllm: {model: m, environment: {_A9: 'x y %h'}}").isEmpty, "printable values of any kind stay allowed")
    }

    @Test("a credential in vllm.environment or --hf-token in extra_args is named for the unit-writing commands to refuse, and a warning elsewhere; a path to one is not")
    func credentialsKeptOutOfTheUnit() throws {
        func credentials(_ yaml: String) throws -> [ConfigIssue] {
            let deployment = try Deployment.parse(yaml: yaml)  // loads: a gateway upgraded under such a file still starts
            let found = deployment.credentialsInUnit()
            #expect(found.allSatisfy(deployment.warnings(pathExists: { _ in true }).contains))
            return found
        }
        let refused = try credentials("vllm: {model: m, environment: {HF_TOKEN: hf_x, WANDB_API_KEY: w, AWS_SECRET_ACCESS_KEY: s, DB_PASSWORD: p}}")
        #expect(refused.map(\.path) == Array(repeating: "vllm.environment", count: 4))
        #expect(refused.first?.message.contains("'AWS_SECRET_ACCESS_KEY' looks like a secret") == true)
        #expect(refused.allSatisfy { $0.message.contains("/etc/warden/vllm.env (root-owned, mode 0640)") })
        #expect(try credentials("vllm: {model: m, env_file: /etc/v.env, environment: {hf_token: x}}").first?.message.contains("put hf_token=… in /etc/v.env") == true)
        #expect(try credentials("vllm: {model: m, environment: {HF_TOKEN_PATH: /p, SSL_KEY_FILE: /k, VLLM_MAX_TOKENS_PER_BATCH: '8', KEYBOARD: x, HF_HUB_OFFLINE: '1'}}").isEmpty)
        #expect(try credentials(#"vllm: {model: m, extra_args: ["--hf-token", "--trust-remote-code"]}"#).isEmpty, "a bare --hf-token uses the stored login")
        #expect(try credentials(#"vllm: {model: m, extra_args: ["--hf-token"]}"#).isEmpty)
        for arguments in [#"["--hf-token", "hf_x"]"#, #"["--hf-token=hf_x"]"#] {
            let flagged = try credentials("vllm: {model: m, extra_args: \(arguments)}")
            #expect(flagged.map(\.path) == ["vllm.extra_args"])
            #expect(flagged.first?.message.contains("put HF_TOKEN in /etc/warden/vllm.env") == true)
        }
    }

    @Test("secrets told from settings by name and value: tokens, keys, passwords, OTLP headers and URL passwords; paths, switches and locations are not")
    func secretVariables() {
        let secrets: [(String, String)] = [
            ("HF_TOKEN", "hf_x"), ("HUGGING_FACE_HUB_TOKEN", "hf_x"), ("WANDB_API_KEY", "w"), ("AWS_SECRET_ACCESS_KEY", "s"),
            ("DB_PASSWORD", "p"), ("SMTP_PASS", "p"), ("DB_PWD", "p"), ("GPG_PASSPHRASE", "p"), ("SERVICE_APIKEY", "k"),
            ("GCP_SA_KEY_JSON", "{}"), ("GOOGLE_APPLICATION_CREDENTIALS", "{\"type\":\"service_account\"}"), ("vault_token", "t"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=k"), ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x"),
            ("HTTPS_PROXY", "http://user:pass@proxy:3128"), ("DATABASE_URL", "postgres://app:s3cret@db/app"),
        ]
        for (name, value) in secrets { #expect(isSecretVariable(name: name, value: value), "\(name)=\(value)") }
        let settings: [(String, String)] = [
            ("HF_HOME", "/var/cache/hf"), ("HF_TOKEN_PATH", "/etc/hf"), ("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1"),
            ("GOOGLE_APPLICATION_CREDENTIALS", "/etc/gcp.json"), ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.2/creds"),
            ("SSL_KEY_FILE", "k.pem"), ("VLLM_MAX_TOKENS_PER_BATCH", "8"), ("TOKENIZERS_PARALLELISM", "false"), ("KEYBOARD", "x"),
            ("PWD", "x"), ("NCCL_SOCKET_IFNAME", "eth0"), ("HTTPS_PROXY", "http://proxy:3128"), ("NO_PROXY", "localhost"),
            ("VLLM_API_KEY", "/run/credentials/key"), ("OTEL_SERVICE_NAME", "vllm"), ("PASS", "x"),
        ]
        for (name, value) in settings { #expect(!isSecretVariable(name: name, value: value), "\(name)=\(value)") }
        #expect(flagValues("--hf-token", in: ["--hf-token", "--x", "--hf-token=", "--hf-token=a", "--hf-token", "b"]) == ["a", "b"])
    }

    @Test("addresses the gateway could not bind are refused by config check: a dotted number that is no IPv4 address, the admin listener on the public one")
    func unbindableAddresses() {
        #expect(issues("vllm: {model: m}\ngateway: {listen: '999.1.1.1:8080'}").first?.path == "gateway.listen")
        #expect(issues("vllm: {model: m, host: 10.0.0.256}").first?.path == "vllm.host")
        #expect(issues("vllm: {model: m}\ngateway: {listen: 'localhost:8080', admin_listen: 'gpu-box.internal:9091'}").isEmpty)
        let same = issues("vllm: {model: m}\ngateway: {listen: '127.0.0.1:9000', admin_listen: '127.0.0.1:9000'}")
        #expect(same.count == 1 && same.first?.path == "gateway.admin_listen", "\(same)")
        #expect(issues("vllm: {model: m}\ngateway: {listen: '0.0.0.0:9000', admin_listen: '127.0.0.1:9000'}").count == 1)
        #expect(issues("vllm: {model: m}\ngateway: {listen: '0.0.0.0:9000', admin_listen: '127.0.0.1:9001'}").isEmpty)
    }

    @Test("warnings: an endpoint listed twice, a network written with host bits set")
    func repeatsAndHostBits() throws {
        let deployment = try Deployment.parse(yaml: """
            vllm: {model: m}
            gateway:
              allowed_endpoints: ["POST /v1/completions", "GET /v1/models", "POST /v1/completions"]
              trusted_proxies: [10.0.0.1/8, 10.1.0.0/16, 192.0.2.7]
              bans: {ignore_networks: ["fd00::1/64", "::1/128"]}
            """)
        let paths = deployment.warnings(pathExists: { _ in true }).map(\.path)
        #expect(paths == ["gateway.allowed_endpoints", "gateway.trusted_proxies", "gateway.bans.ignore_networks"], "\(paths)")
        #expect(IPNetwork("10.0.0.0/8")?.hasHostBits == false && IPNetwork("10.0.0.1/8")?.hasHostBits == true)
        #expect(IPNetwork("10.0.0.1")?.hasHostBits == false && IPNetwork("::ffff:10.0.0.1/104")?.hasHostBits == true)
    }

    @Test("a long unknown key is reported at once, shortened, without a suggestion")
    func longUnknownKey() {
        let name = String(repeating: "k", count: 1_000_000)
        let found = issues("vllm:\n  model: m\n  \(name): 1\n")
        #expect(found.count == 1)
        #expect(found.first?.path == "vllm." + String(repeating: "k", count: 40) + "…")
        #expect(found.first?.message.contains("known keys here") == true)
    }

    @Test("an unknown top-level section names the known ones")
    func unknownSection() {
        let found = issues("vllm: {model: m}\nmetrics: {}\n")
        #expect(found.map(\.path) == ["metrics"])
        #expect(found[0].message.contains("vllm, paths, gateway, systemd"))
    }

    @Test("a wrong type names the key path and the line")
    func wrongType() {
        let found = issues("vllm:\n  model: m\n  port: eight-thousand\n")
        #expect(found.count == 1)
        #expect(found[0].path == "vllm.port")
        #expect(found[0].line == 3)
        #expect(found[0].message.contains("expected a whole number from 1 to 65535"))
    }

    @Test("out-of-range values are all reported at once, with the allowed range")
    func outOfRange() {
        let yaml = """
        vllm:
          model: m
          gpu_memory_utilization: 1.5
          port: 70000
          shutdown_timeout: -5
        gateway:
          drain_timeout: -1s
        """
        let found = issues(yaml)
        #expect(found.map(\.path) == ["vllm.gpu_memory_utilization", "vllm.port", "vllm.shutdown_timeout", "gateway.drain_timeout"])
        #expect(found[0].message == "1.5 is out of range; allowed: 0.05 to 1.0")
        #expect(found[1].message.contains("allowed: 1 to 65535"))
        #expect(found[2].line == 5)
    }

    @Test("broken YAML reports the line and column")
    func brokenYAML() {
        let found = issues("vllm:\n  model: m\n  port: [8000\n")
        #expect(found.count == 1)
        #expect(found[0].line != nil)
        #expect(found[0].message.hasPrefix("YAML syntax error"))
    }

    @Test("a missing model and a missing vllm section are explained")
    func missingModel() {
        #expect(issues("vllm:\n  port: 8000\n").map(\.path) == ["vllm.model"])
        #expect(issues("paths: {}\n").map(\.path) == ["vllm"])
        #expect(issues("").first?.message.contains("must be a mapping") == true)
    }

    @Test("addresses, networks, endpoints and paths are checked")
    func fieldFormats() {
        let yaml = """
        vllm: {model: m, venv: relative/venv, user: Root!, extra_args: ["--api-key", "x"]}
        gateway:
          listen: "8080"
          upstream: ftp://x
          allowed_endpoints: ["FETCH /v1/x", "POST v1/chat"]
          trusted_proxies: [10.0.0.0/33]
          bans: {ban_time: 2h, max_ban_time: 1h}
        """
        let paths = issues(yaml).map(\.path)
        #expect(paths.contains("vllm.venv"))
        #expect(paths.contains("vllm.user"))
        #expect(paths.contains("vllm.extra_args"))
        #expect(paths.contains("gateway.listen"))
        #expect(paths.contains("gateway.upstream"))
        #expect(paths.contains("gateway.allowed_endpoints[0]"))
        #expect(paths.contains("gateway.allowed_endpoints[1]"))
        #expect(paths.contains("gateway.trusted_proxies[0]"))
        #expect(paths.contains("gateway.bans.max_ban_time"))
    }

    @Test("durations accept units")
    func durations() throws {
        let deployment = try Deployment.parse(yaml: "vllm: {model: m}\ngateway: {drain_timeout: 2m, bans: {find_time: 1h, max_ban_time: 2d}}")
        #expect(deployment.gateway.drainTimeout == 120)
        #expect(deployment.gateway.bans.findTime == 3600)
        #expect(deployment.gateway.bans.maxBanTime == 172_800)
    }

    @Test("--config wins over WARDEN_CONFIG, which wins over the default path")
    func pathResolution() {
        #expect(Deployment.resolvePath(explicit: "/a.yaml", environment: ["WARDEN_CONFIG": "/b.yaml"]) == "/a.yaml")
        #expect(Deployment.resolvePath(explicit: nil, environment: ["WARDEN_CONFIG": "/b.yaml"]) == "/b.yaml")
        #expect(Deployment.resolvePath(explicit: nil, environment: [:]) == "/etc/warden/warden.yaml")
    }

    @Test("a missing file tells how to write one")
    func missingFile() {
        #expect(throws: ConfigError.self) { try Deployment.load(path: "/nonexistent/warden.yaml") }
        do {
            _ = try Deployment.load(path: "/nonexistent/warden.yaml")
        } catch {
            #expect(error.description.contains("warden config example"))
        }
    }

    @Test("show renders YAML that parses back to the same deployment, and JSON")
    func showRoundTrip() throws {
        let deployment = try Deployment.parse(yaml: "vllm: {model: /m/x, max_model_len: 4096}\ngateway: {trusted_proxies: [10.0.0.0/8]}")
        let yaml = try deployment.rendered(as: .yaml)
        #expect(try Deployment.parse(yaml: yaml) == deployment)
        #expect(try deployment.rendered(as: .json).contains("\"gpu_memory_utilization\" : 0.9"))
    }

    @Test("contradictions across sections are errors, and every section is read even when one fails")
    func acrossSections() {
        let found = issues("""
            vllm:
              model: m
              port: 8080
              extra_args: ["--port", "9000", "--host=0.0.0.0"]
            gateway:
              listen: 127.0.0.1:8080
              tls: {certificate: /c, private_key: /k}
            """)
        #expect(found.map(\.path) == ["vllm.extra_args", "vllm.extra_args", "gateway.listen", "gateway.tls"])
        #expect(found[0].message.contains("set vllm.port instead"))
        #expect(found[2].message.contains("the gateway would proxy to itself"))
        #expect(found[3].message.contains("terminate TLS in Caddy or nginx"))
        let both = issues("vllm:\n  port: 1\ngateway:\n  drain_timeout: soon\n")
        #expect(Set(both.map(\.path)) == ["vllm.model", "gateway.drain_timeout"], "the gateway's problem is reported with vllm's")
    }

    @Test("an allowed route needs a meter or an explicit cost; audio needs its rate; templates are checked")
    func unmeteredRoutes() {
        let allowed = ["POST /v1/chat/completions", "POST /v1/responses", "GET /v1/responses/{id}", "POST /v1/messages", "POST /v1/rerank",
                       "POST /invocations", "POST /tokenize", "POST /v1/audio/transcriptions", "POST /inference/v1/generate"]
        let list = allowed.map { "\"\($0)\"" }.joined(separator: ", ")
        let found = issues("vllm: {model: m}\ngateway:\n  allowed_endpoints: [\(list)]\n")
        #expect(found.map(\.path) == ["gateway.allowed_endpoints", "gateway.allowed_endpoints", "gateway.allowed_endpoints"])
        #expect(found[0].message.contains("'POST /invocations' has no meter") && found[0].message.contains("route_costs"))
        #expect(found[1].message.contains("'POST /v1/audio/transcriptions'") && found[1].message.contains("audio_tokens_per_second"))
        #expect(found[2].message.contains("'POST /inference/v1/generate' has no meter"))
        let costed = issues("""
            vllm: {model: m}
            gateway:
              allowed_endpoints: [\(list)]
              route_costs: {"POST /invocations": 4000, "POST /inference/v1/generate": 2000}
              audio_tokens_per_second: 50
            """)
        #expect(costed.isEmpty, "\(costed)")
        let broken = issues("""
            vllm: {model: m}
            gateway:
              allowed_endpoints: ["GET /v1/responses/{id}/../x", "GET /v1/responses/%2e", "FETCH /x"]
              route_costs: {"POST /x": lots, "nonsense": 1}
            """)
        #expect(broken.map(\.path).sorted() == ["gateway.allowed_endpoints[0]", "gateway.allowed_endpoints[1]", "gateway.allowed_endpoints[2]",
                                       "gateway.route_costs", "gateway.route_costs"], "\(broken)")
    }
}
