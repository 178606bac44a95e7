import Foundation
import Testing
import WardenConfig
@testable import WardenSystemd

/// These run Debian's real `systemd-analyze` (scripts/test installs the `systemd` package).
@Suite("warden unit verify with the real systemd-analyze")
struct UnitVerificationTests {
    func renderedDirectory(_ deployment: Deployment) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("warden-units-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (name, contents) in UnitRenderer.render(deployment, systemd: .debian12).files {
            try contents.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return directory
    }

    @Test("rendered units parse cleanly on systemd 252 and meet the score targets")
    func targetsMet() throws {
        let directory = try renderedDirectory(try goldenDeployment())
        defer { try? FileManager.default.removeItem(at: directory) }
        let reports = try UnitVerifier().verify(directory: directory.path)
        #expect(reports.count == 2)
        for report in reports {
            #expect(report.verifyProblems.isEmpty, "\(report.unit): \(report.verifyProblems)")
            let exposure = try #require(report.exposure, "no score for \(report.unit)")
            #expect(exposure <= report.target, "\(report.unit) scored \(exposure), target \(report.target)")
            #expect(report.passed)
        }
        #expect(reports.first { $0.unit == "vllm.service" }?.exposure ?? 10 <= 1.5)
        #expect(reports.first { $0.unit == "warden-gateway.service" }?.exposure ?? 10 <= 1.0)
    }

    @Test("values with %, quotes, backslashes and spaces render as systemd reads them: no specifier expanded, no path split")
    func environmentQuoting() throws {
        var deployment = try goldenDeployment()
        deployment.vllm.environment = ["PERCENT": "90%Z of it", "QUOTED": #"say "hi" \ bye"#]
        deployment.vllm.model = "/opt/My 100% Model"
        deployment.vllm.servedModelName = "my-%i-model"
        deployment.paths.state = "/srv/vllm state"
        let directory = try renderedDirectory(deployment)
        defer { try? FileManager.default.removeItem(at: directory) }
        let unit = try String(contentsOf: directory.appendingPathComponent("vllm.service"), encoding: .utf8)
        #expect(unit.contains(#"Environment="PERCENT=90%%Z of it""# + "\n"))
        #expect(unit.contains(#"Environment="QUOTED=say \"hi\" \\ bye""# + "\n"))
        #expect(unit.contains(#"ReadOnlyPaths=/srv/models "/opt/My 100%% Model""# + "\n"), "\(unit)")
        #expect(unit.contains(#"ReadWritePaths="/srv/vllm state""# + "\n"))
        #expect(unit.contains("Description=vLLM OpenAI-compatible server (my-%%i-model)\n"))
        let report = try #require(try UnitVerifier().verify(directory: directory.path).first { $0.unit == "vllm.service" })
        #expect(report.verifyProblems.isEmpty, "\(report.verifyProblems)")
    }

    @Test("a directive 252 does not know is reported, and a weak unit misses the target")
    func problemsAreReported() throws {
        let directory = try renderedDirectory(try goldenDeployment())
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("vllm.service")
        var text = try String(contentsOf: path, encoding: .utf8)
        text = text.replacingOccurrences(of: "PrivateTmp=true", with: "PrivateTmp=disconnected")
        text = text.replacingOccurrences(of: "SystemCallFilter=@system-service\n", with: "")
        text = text.replacingOccurrences(of: "SystemCallFilter=~@privileged\n", with: "")
        try text.write(to: path, atomically: true, encoding: .utf8)
        let report = try #require(try UnitVerifier().verify(directory: directory.path).first { $0.unit == "vllm.service" })
        #expect(report.verifyProblems.contains { $0.contains("disconnected") })
        #expect((report.exposure ?? 0) > 1.5)
        #expect(!report.passed)
    }

    @Test("the score line and the worst rows are parsed from systemd-analyze's text")
    func parsing() {
        let output = """
        ✗ PrivateNetwork=     Service has access to the host's network     0.5
        ✓ UMask=              Files created by service are accessible only  
        ✗ ProcSubset=         Service has full access to non-process /proc   0.1
        → Overall exposure level for vllm.service: 1.4 OK 🙂
        """
        #expect(UnitVerifier.exposure(in: output) == 1.4)
        #expect(UnitVerifier.topExposures(in: output) == ["PrivateNetwork= Service has access to the host's network (0.5)"])
    }

    @Test("a systemd without security --offline (249, Ubuntu 22.04) skips the score instead of failing the units; a missing score otherwise fails")
    func scoreUnsupported() throws {
        let old = RecordingRunner()
        old.answer = { command in
            command.contains("security") ? CommandOutput(status: 1, stderr: "systemd-analyze: unrecognized option '--offline=true'\n") : CommandOutput(status: 0)
        }
        let reports = try UnitVerifier(runner: old).verify(directory: "/nonexistent")
        #expect(reports.count == 2 && reports.allSatisfy { $0.passed && $0.scoreSkipped != nil && $0.exposure == nil })
        let broken = RecordingRunner()
        broken.answer = { command in command.contains("security") ? CommandOutput(status: 1, stderr: "Failed to load unit\n") : CommandOutput(status: 0) }
        #expect(try UnitVerifier(runner: broken).verify(directory: "/nonexistent").allSatisfy { !$0.passed && $0.scoreSkipped == nil })
    }
}
