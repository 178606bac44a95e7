import Foundation
import Testing
import WardenConfig
@testable import WardenSystemd

@Suite("warden selftest with a fake systemd-run")
struct SelftestTests {
    let deployment = try! Deployment.parse(yaml: "vllm: {model: /srv/models/qwen, venv: /opt/vllm/.venv}")

    @Test("the command carries the user, environment and every sandbox property of vllm.service")
    func commandConstruction() {
        let selftest = Selftest(deployment: deployment, systemd: .debian12, runner: RecordingRunner())
        let sandbox = VLLMSandbox.properties(for: deployment, systemd: .debian12)
        let command = selftest.command(properties: sandbox, unitName: "warden-selftest-1")
        #expect(Array(command.prefix(6)) == ["--wait", "--pipe", "--quiet", "--collect", "--service-type=exec", "--unit=warden-selftest-1"])
        let properties = stride(from: 0, to: command.count - 1, by: 1).filter { command[$0] == "-p" }.map { command[$0 + 1] }
        #expect(properties.contains("User=vllm"))
        #expect(properties.contains("EnvironmentFile=-/etc/warden/vllm.env"))
        #expect(properties.contains("Environment=TRITON_CACHE_DIR=/var/cache/vllm/triton"))
        #expect(properties.contains("StateDirectory=vllm"))
        for property in sandbox { #expect(properties.contains("\(property.key)=\(property.value)"), "\(property.key)") }
        #expect(properties.contains("DeviceAllow=char-nvidia-uvm rw"))
        let separator = try! #require(command.firstIndex(of: "--"))
        #expect(command[separator + 1] == "/opt/vllm/.venv/bin/python")
        #expect(command[separator + 2] == "-c")
        #expect(command[separator + 3].contains("cuInit"))
    }

    @Test("the built-in workloads are valid Python", arguments: [SelftestWorkload.cuda, .cpu])
    func workloadCompiles(workload: SelftestWorkload) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("selftest-\(UUID().uuidString).py").path
        try workload.source.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try ProcessRunner().run("python3", ["-m", "py_compile", path])
        #expect(result.status == 0, "\(result.combined)")
    }

    @Test("the CPU workload passes unsandboxed on this host, step by step")
    func cpuWorkloadRuns() throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("selftest-home-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: home) }
        let result = try ProcessRunner().run("/usr/bin/env", ["HOME=\(home)", "python3", "-c", SelftestWorkload.cpu.source])
        #expect(result.status == 0, "\(result.combined)")
        for step in ["caches", "sockets", "shared-memory", "spawn", "affinity", "memory"] {
            #expect(result.stdout.contains("\"step\": \"\(step)\", \"ok\": true"), "\(step): \(result.stdout)")
        }
    }

    @Test("the chosen workload is what systemd-run runs")
    func workloadIsPassed() {
        let custom = Selftest(deployment: deployment, systemd: .debian12, workload: .custom(source: "print('mine')"), runner: RecordingRunner())
        #expect(custom.command(properties: [], unitName: "u").last == "print('mine')")
        let cpu = Selftest(deployment: deployment, systemd: .debian12, workload: .cpu, runner: RecordingRunner())
        #expect(cpu.command(properties: [], unitName: "u").last?.contains("shared_memory") == true)
    }

    @Test("a passing workload runs once")
    func passesFirstTime() throws {
        let runner = RecordingRunner()
        let report = try Selftest(deployment: deployment, systemd: .debian12, runner: runner).run()
        #expect(report.passed)
        #expect(runner.calls.count == 1)
    }

    @Test("on failure, settings are relaxed one group at a time until one makes it pass, and that one is named")
    func relaxAndRetry() throws {
        let runner = RecordingRunner()
        // This host's CUDA fails while the NVIDIA device policy is in place.
        runner.answer = { arguments in
            arguments.contains("DevicePolicy=closed") ? CommandOutput(status: 1, stderr: "cuInit returned 999") : CommandOutput(status: 0)
        }
        let report = try Selftest(deployment: deployment, systemd: .debian12, runner: runner).run()
        #expect(!report.passed)
        #expect(report.culprit == "Devices")
        #expect(report.attempts.map(\.relaxed) == [nil, "MemoryDenyWriteExecute", "SystemCallFilter", "RestrictAddressFamilies", "Devices"])
        let devicesRun = runner.calls.last!
        #expect(!devicesRun.contains { $0.hasPrefix("DeviceAllow=") })
        #expect(devicesRun.contains("MemoryDenyWriteExecute=true"))
    }

    @Test("a workload that fails even without a sandbox is reported as such")
    func brokenHost() throws {
        let runner = RecordingRunner()
        runner.answer = { _ in CommandOutput(status: 1, stdout: #"{"ok": false}"#) }
        let report = try Selftest(deployment: deployment, systemd: .debian12, runner: runner).run()
        #expect(report.culprit == nil)
        #expect(report.failsWithoutSandbox)
        #expect(report.attempts.last?.relaxed == "(no sandbox)")
        let lastCall = runner.calls.last!
        #expect(!lastCall.contains("ProtectSystem=strict"))
        #expect(lastCall.contains("User=vllm"))
    }
}
