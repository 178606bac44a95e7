import Testing
import WardenConfig
@testable import WardenPreflight

@Suite("preflight: GPU checks against a fake NVML")
struct GPUCheckTests {
    @Test("a healthy host passes every check")
    func healthyHostPasses() {
        let report = Preflight.run(deployment: FakeHost.deployment, host: FakeHost.healthy())
        let notPassing = report.results.filter { $0.status != .pass && $0.status != .skip }
        #expect(notPassing.isEmpty, "\(notPassing)")
        #expect(report.passed)
        #expect(report.results.count == Preflight.catalog.count)
        #expect(Preflight.catalog.count >= 18)
    }

    @Test("NVML is gathered once for all GPU checks")
    func nvmlGatheredOnce() {
        let host = FakeHost.healthy()
        _ = Preflight.run(deployment: FakeHost.deployment, host: host)
        #expect(host.nvmlCalls.value == 1)
    }

    @Test("each NVML failure gets its own message and hint", arguments: [
        (NVMLReport.Failure.libraryNotFound("no file"), "could not be loaded"),
        (.driverNotLoaded, "driver is not loaded"),
        (.versionMismatch, "version mismatch"),
        (.noPermission, "no permission"),
        (.blockedByOperatingSystem, "blocked by the operating system"),
        (.timedOut, "time budget"),
    ])
    func nvmlFailures(failure: NVMLReport.Failure, text: String) {
        var host = FakeHost.healthy()
        host.nvml = .failed(failure)
        for id in ["gpu.nvml", "gpu.count", "gpu.memory", "gpu.health", "gpu.persistence"] {
            let result = outcome(id, host: host)
            #expect(result.status == .fail)
            #expect(result.detail.contains(text), "\(id): \(result.detail)")
            #expect(result.hint != nil)
        }
    }

    @Test("without NVML, gpu.nvml fails once and the checks that need it skip; the failure is permanent")
    func nvmlFailureReportedOnce() {
        var host = FakeHost.healthy()
        host.nvml = .failed(.driverNotLoaded)
        let report = Preflight.run(deployment: FakeHost.deployment, host: host)
        let byID = Dictionary(uniqueKeysWithValues: report.results.map { ($0.id, $0) })
        #expect(byID["gpu.nvml"]?.status == .fail)
        for id in ["gpu.count", "gpu.memory", "gpu.health", "gpu.persistence", "cuda.driver"] {
            #expect(byID[id]?.status == .skip, "\(id)")
            #expect(byID[id]?.detail == "needs NVML: see gpu.nvml", "\(id)")
        }
        #expect(report.results.filter { $0.detail.contains("driver is not loaded") }.count == 1)
        #expect(report.failedPermanently)
        #expect(report.text.contains("systemd does not retry this"))
        // Skipping the GPU group on purpose (a drop-in on a host whose GPU checks are known to misfire) skips
        // what depends on it too; leaving gpu.nvml out of --only does not hide the failure.
        let skipped = Preflight.run(deployment: FakeHost.deployment, host: host, skip: Set(Preflight.ids(matching: "gpu")))
        #expect(skipped.results.first { $0.id == "cuda.driver" }?.status == .skip)
        #expect(outcome("cuda.driver", host: host).status == .fail)
    }

    @Test("GPU memory still held by a process is a transient failure: systemd may retry")
    func heldMemoryIsTransient() {
        var host = FakeHost.healthy()
        host.nvml.selected[0].memoryFree = 1 << 30
        let report = Preflight.run(deployment: FakeHost.deployment, host: host)
        #expect(!report.passed)
        #expect(report.results.first { $0.id == "gpu.memory" }?.transient == true)
        #expect(!report.failedPermanently)
        #expect(report.json.contains(#""permanent_failure":false"#))
        host.nvml.selected[0].uncorrectedECC = 1
        #expect(Preflight.run(deployment: FakeHost.deployment, host: host).failedPermanently)
    }

    @Test("--only/--skip selectors: an id, or a group for all its checks")
    func selectors() {
        #expect(Preflight.ids(matching: "gpu") == ["gpu.nvml", "gpu.count", "gpu.memory", "gpu.health", "gpu.persistence", "gpu.devices"])
        #expect(Preflight.ids(matching: "model.fit") == ["model.fit"])
        #expect(Preflight.ids(matching: "mod").isEmpty)
        #expect(Preflight.groups == ["gpu", "cuda", "vllm", "model", "net", "fs", "sys", "secrets"])
    }

    @Test("too few GPUs for TP × PP fails; unmatched CUDA_VISIBLE_DEVICES fails")
    func gpuCount() {
        var host = FakeHost.healthy()
        host.nvml.selected.removeLast()
        #expect(outcome("gpu.count", host: host).status == .fail)
        var deployment = FakeHost.deployment
        deployment.vllm.tensorParallelSize = 1
        #expect(outcome("gpu.count", host: host, deployment: deployment).status == .pass)
        host.nvml.unmatchedSelection = ["7"]
        #expect(outcome("gpu.count", host: host, deployment: deployment).detail.contains("match no GPU"))
    }

    @Test("index-based CUDA_VISIBLE_DEVICES without PCI_BUS_ID order warns")
    func deviceOrder() {
        var host = FakeHost.healthy()
        host.environment["CUDA_VISIBLE_DEVICES"] = "0,1"
        #expect(outcome("gpu.count", host: host).status == .warn)
        host.environment["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        #expect(outcome("gpu.count", host: host).status == .pass)
    }

    @Test("free memory below utilization × total fails and names the holders")
    func gpuMemory() {
        var host = FakeHost.healthy()
        host.nvml.selected[1].memoryFree = 40 << 30
        host.nvml.selected[1].processes = [(pid: 4242, usedBytes: 39 << 30)]
        host.processList = [HostProcess(pid: 4242, name: "python3", uid: 1000)]
        let result = outcome("gpu.memory", host: host)
        #expect(result.status == .fail)
        #expect(result.detail.contains("GPU 1: 40.0 GiB free of 80.0 GiB"))
        #expect(result.detail.contains("4242 python3"))
        var lower = FakeHost.deployment
        lower.vllm.gpuMemoryUtilization = 0.45
        #expect(outcome("gpu.memory", host: host, deployment: lower).status == .pass)
    }

    @Test("orphaned vLLM engine processes fail the memory check")
    func orphans() {
        var host = FakeHost.healthy()
        host.processList = [HostProcess(pid: 77, name: "VLLM::EngineCore", uid: 997)]
        let result = outcome("gpu.memory", host: host)
        #expect(result.status == .fail)
        #expect(result.detail.contains("77 VLLM::EngineCore"))
    }

    @Test("uncorrected ECC and failed remaps fail; pending remaps warn")
    func health() {
        var host = FakeHost.healthy()
        host.nvml.selected[0].remappedRowsPending = true
        #expect(outcome("gpu.health", host: host).status == .warn)
        host.nvml.selected[1].uncorrectedECC = 3
        #expect(outcome("gpu.health", host: host).status == .fail)
        var remapFailed = FakeHost.healthy()
        remapFailed.nvml.selected[0].remappedRowsFailed = true
        #expect(outcome("gpu.health", host: remapFailed).status == .fail)
    }

    @Test("persistence mode off warns")
    func persistence() {
        var host = FakeHost.healthy()
        host.nvml.selected[0].persistenceEnabled = false
        let result = outcome("gpu.persistence", host: host)
        #expect(result.status == .warn)
        #expect(result.hint?.contains("nvidia-persistenced") == true)
    }

    @Test("missing or wrong device nodes and missing nvidia-uvm fail; unallowed groups warn")
    func devices() {
        var host = FakeHost.healthy()
        host.files["/dev/nvidia-uvm"] = nil
        #expect(outcome("gpu.devices", host: host).detail.contains("/dev/nvidia-uvm is missing"))
        var regular = FakeHost.healthy()
        regular.files["/dev/nvidia0"] = FileInfo(kind: .regular)
        #expect(outcome("gpu.devices", host: regular).status == .fail)
        var noUVM = FakeHost.healthy()
        noUVM.file("/proc/devices", "Character devices:\n195 nvidia-frontend\n")
        #expect(outcome("gpu.devices", host: noUVM).detail.contains("nvidia-uvm is not loaded"))
        var extra = FakeHost.healthy()
        extra.file("/proc/devices", "Character devices:\n195 nvidia-frontend\n234 nvidia-uvm\n240 nvidia-nvswitch\n")
        let warned = outcome("gpu.devices", host: extra)
        #expect(warned.status == .warn)
        #expect(warned.detail.contains("nvidia-nvswitch"))
    }

    @Test("the device groups the unit allows are parsed from /proc/devices")
    func deviceGroups() {
        let groups = NVIDIADeviceGroups.parse(Array("Character devices:\n195 nvidia\n195 nvidiactl\nBlock devices:\n259 nvidia-fake\n".utf8))
        #expect(groups == ["nvidia", "nvidiactl"])
    }
}
