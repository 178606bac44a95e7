import Foundation
import Testing

@Suite("warden preflight (the real binary on this GPU-less machine)")
struct PreflightCommandTests {
    func config() throws -> (ScratchDirectory, String) {
        let scratch = try ScratchDirectory()
        let path = try scratch.write("w.yaml", """
        vllm: {model: \(scratch.url.path)/model, venv: \(scratch.url.path)/venv, port: 1}
        paths: {state: \(scratch.url.path)/state, cache: \(scratch.url.path)/cache}
        """)
        return (scratch, path)
    }

    @Test("no NVML is a permanent failure (exit 3, not retried by systemd); every other check still runs")
    func runsWithoutGPU() throws {
        let (scratch, path) = try config()
        let result = try BuiltProduct.run("warden", ["preflight", "--config", path])
        _ = scratch
        #expect(result.status == 3)
        #expect(result.stdout.contains("FAIL  gpu.nvml"))
        #expect(result.stdout.contains("SKIP  gpu.memory"))
        #expect(result.stdout.contains("systemd does not retry this"))
        #expect(result.stdout.contains("fix: install the NVIDIA driver"))
        for id in ["net.port", "fs.disk", "sys.memory", "sys.nofile", "secrets.envfile", "model.files"] {
            #expect(result.stdout.contains(" \(id) "), "\(id) missing from:\n\(result.stdout)")
        }
    }

    @Test("--format json prints the documented schema")
    func json() throws {
        let (scratch, path) = try config()
        let result = try BuiltProduct.run("warden", ["preflight", "--config", path, "--format", "json", "--skip", "fs.caches"])
        _ = scratch
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(document["schema"] as? String == "warden.preflight/v1")
        #expect(document["ok"] as? Bool == false)
        let checks = try #require(document["checks"] as? [[String: Any]])
        #expect(checks.count >= 17)
        #expect(!checks.contains { $0["id"] as? String == "fs.caches" })
        for check in checks {
            #expect(["pass", "warn", "fail", "skip"].contains(check["status"] as? String ?? ""))
            #expect(check["duration_ms"] is Double || check["duration_ms"] is Int)
            #expect(check["detail"] is String)
        }
        let summary = try #require(document["summary"] as? [String: Any])
        #expect((summary["fail"] as? Int ?? 0) >= 1)
    }

    @Test("--only runs just those checks; unknown ids and bad files exit 2")
    func selection() throws {
        let (scratch, path) = try config()
        _ = scratch
        let only = try BuiltProduct.run("warden", ["preflight", "--config", path, "--only", "sys.nofile,fs.disk"])
        let checkLines = only.stdout.split(separator: "\n").filter { ["PASS", "WARN", "FAIL", "SKIP"].contains($0.prefix(4)) }
        #expect(checkLines.map { $0.split(separator: " ", omittingEmptySubsequences: true)[1] } == ["fs.disk", "sys.nofile"])
        let unknown = try BuiltProduct.run("warden", ["preflight", "--config", path, "--only", "gpu.magic"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("no check or group 'gpu.magic'"))
        let typo = try BuiltProduct.run("warden", ["preflight", "--config", path, "--only", "model.fles"])
        #expect(typo.stderr.contains("did you mean 'model.files'?"))
        #expect(try BuiltProduct.run("warden", ["preflight", "--config", "/nonexistent.yaml"]).status == 2)
        let empty = try BuiltProduct.run("warden", ["preflight", "--config", ""])
        #expect(empty.status == 2 && empty.stderr.contains("--config is empty"), "\(empty.stderr)")
        // A selection that runs nothing must not report that vLLM may start.
        for selection in [["--only", ""], ["--only", ",,,"], ["--only", "gpu", "--skip", "gpu"]] {
            let nothing = try BuiltProduct.run("warden", ["preflight", "--config", path] + selection)
            #expect(nothing.status == 2, "\(selection)")
            #expect(nothing.stderr.contains("no check"), "\(nothing.stderr)")
        }
    }

    @Test("groups select their checks; $WARDEN_PREFLIGHT_SKIP (a unit drop-in's way) adds to --skip")
    func groupsAndEnvironment() throws {
        let (scratch, path) = try config()
        _ = scratch
        func ids(_ result: CommandResult) -> [Substring] {
            result.stdout.split(separator: "\n").filter { ["PASS", "WARN", "FAIL", "SKIP"].contains($0.prefix(4)) }
                .map { $0.split(separator: " ", omittingEmptySubsequences: true)[1] }
        }
        let gpu = try BuiltProduct.run("warden", ["preflight", "--config", path, "--only", "gpu"])
        #expect(ids(gpu) == ["gpu.nvml", "gpu.count", "gpu.memory", "gpu.health", "gpu.persistence", "gpu.devices"])
        let skipped = try BuiltProduct.run("warden", ["preflight", "--config", path, "--only", "gpu,sys.nofile", "--skip", "gpu.devices"],
                                           environment: ["WARDEN_PREFLIGHT_SKIP": "gpu.nvml,gpu.count, gpu.memory,gpu.health,gpu.persistence"])
        #expect(ids(skipped) == ["sys.nofile"])
        #expect(skipped.status == 0, "\(skipped.stdout)")
        let bad = try BuiltProduct.run("warden", ["preflight", "--config", path], environment: ["WARDEN_PREFLIGHT_SKIP": "gpux"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("$WARDEN_PREFLIGHT_SKIP: no check or group 'gpux'; did you mean 'gpu'?"))
        // A drop-in that skips everything turns preflight off for the service: said, and vLLM may start.
        let everything = try BuiltProduct.run("warden", ["preflight", "--config", path, "--only", "gpu"], environment: ["WARDEN_PREFLIGHT_SKIP": "gpu"])
        #expect(everything.status == 0)
        #expect(everything.stderr.contains("skips every check selected; nothing was checked"))
    }
}
