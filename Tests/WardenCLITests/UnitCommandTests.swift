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
}
