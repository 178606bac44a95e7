import Foundation
import Testing
import WardenTestSupport

/// `warden unit render`: what it writes, and what it must never overwrite.
@Suite("warden unit render (the real binary)")
struct UnitCommandTests {
    @Test("rendering again keeps an existing vllm.env (it may hold the live key); a file or an unwritable --out is a clear error")
    func renderKeepsKeyFile() throws {
        let scratch = try ScratchDirectory()
        let config = try scratch.write("w.yaml", "vllm: {model: /models/qwen}\n")
        let out = scratch.url.appendingPathComponent("units").path
        func render(_ directory: String) throws -> CommandResult {
            try BuiltProduct.run("warden", ["unit", "render", "--config", config, "--out", directory, "--systemd-version", "252"])
        }
        let first = try render(out)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try String(contentsOfFile: out + "/vllm.env", encoding: .utf8).contains("VLLM_API_KEY="))
        try "VLLM_API_KEY=the-live-key\n".write(toFile: out + "/vllm.env", atomically: true, encoding: .utf8)
        let again = try render(out)
        #expect(again.status == 0)
        #expect(again.stdout.contains("kept \(out)/vllm.env"))
        #expect(try String(contentsOfFile: out + "/vllm.env", encoding: .utf8) == "VLLM_API_KEY=the-live-key\n")
        #expect(try String(contentsOfFile: out + "/vllm.service", encoding: .utf8).contains("ExecStart="))

        let file = try render(config)
        #expect(file.status == 2)
        #expect(file.stderr.contains("is a file, not a directory"), "\(file.stderr)")
        #expect(!file.stderr.contains("CocoaError"))

        let missing = try BuiltProduct.run("warden", ["unit", "verify", scratch.url.path + "/nowhere"])
        #expect(missing.status == 2 && missing.stderr.contains("no vllm.service in"), "\(missing.stderr)")
    }

    @Test("HF_TOKEN in vllm.environment: unit render, install and selftest refuse it (exit 2, nothing written, the env file named); config check only warns")
    func credentialsRefusedWhereUnitsAreWritten() throws {
        let scratch = try ScratchDirectory()
        let config = try scratch.write("w.yaml", "vllm: {model: /models/qwen, environment: {HF_TOKEN: hf_abcdefghijklmnop}}\n")
        let out = scratch.url.appendingPathComponent("units").path
        let commands = [["unit", "render", "--out", out, "--systemd-version", "252"],
                        ["install", "--root", scratch.url.appendingPathComponent("root").path, "--systemd-version", "252"],
                        ["selftest", "--workload", "cpu"]]
        for command in commands {
            let result = try BuiltProduct.run("warden", command + ["--config", config])
            #expect(result.status == 2, "\(command): \(result.stderr)")
            #expect(result.stderr.contains("vllm.environment: 'HF_TOKEN' looks like a secret"), "\(command): \(result.stderr)")
            #expect(result.stderr.contains("put HF_TOKEN=… in /etc/warden/vllm.env"))
            #expect(!result.stderr.contains("hf_abcdefghijklmnop") && !result.stdout.contains("hf_abcdefghijklmnop"))
        }
        #expect(!FileManager.default.fileExists(atPath: out) && !FileManager.default.fileExists(atPath: scratch.url.appendingPathComponent("root").path))
        let check = try BuiltProduct.run("warden", ["config", "check", "--config", config])
        #expect(check.status == 0, "\(check.stderr)")
        #expect((check.stdout + check.stderr).contains("'HF_TOKEN' looks like a secret"))
    }
}
