/// Checks answered by the NVML pass and the NVIDIA device nodes.
enum GPUChecks {
    static let all: [PreflightCheck] = [nvml, count, memory, health, persistence, devices]

    static let nvml = PreflightCheck("gpu.nvml", "NVML loads and initialises", budget: .seconds(8)) { context in
        let report = context.nvml
        if let unavailable = report.unavailableOutcome { return unavailable }
        let cuda = report.cudaDriverVersion.map(cudaVersionText) ?? "unknown"
        return .pass("driver \(report.driverVersion ?? "unknown"), CUDA \(cuda), \(report.totalCount) GPU(s)")
    }

    static let count = PreflightCheck("gpu.count", "enough GPUs for tensor × pipeline parallelism", budget: .seconds(8)) { context in
        let report = context.nvml
        if let unavailable = context.nvmlUnavailableOutcome { return unavailable }
        let visible = context.environment["CUDA_VISIBLE_DEVICES"]
        if !report.unmatchedSelection.isEmpty {
            return .fail("CUDA_VISIBLE_DEVICES lists \(report.unmatchedSelection.joined(separator: ", ")), which match no GPU",
                         hint: "use indexes 0..\(max(0, report.totalCount - 1)) or full GPU-… UUIDs from `nvidia-smi -L`")
        }
        let need = context.requiredGPUs
        let have = report.selected.count
        let scope = visible.map { "visible with CUDA_VISIBLE_DEVICES=\($0)" } ?? "present"
        guard have >= need else {
            return .fail("tensor_parallel_size × pipeline_parallel_size = \(need) needs \(need) GPU(s); \(have) \(scope)",
                         hint: "lower vllm.tensor_parallel_size, or make more GPUs visible")
        }
        if let visible, visible.split(separator: ",").contains(where: { Int($0) != nil }), report.totalCount > 1,
           context.environment["CUDA_DEVICE_ORDER"] != "PCI_BUS_ID" {
            return .warn("\(have) GPU(s) \(scope); CUDA numbers GPUs fastest-first, which may differ from nvidia-smi's order",
                         hint: "set CUDA_DEVICE_ORDER=PCI_BUS_ID in vllm.environment, or select GPUs by UUID")
        }
        return .pass("\(have) GPU(s) \(scope), \(need) needed")
    }

    static let memory = PreflightCheck("gpu.memory", "free GPU memory covers gpu_memory_utilization", budget: .seconds(8)) { context in
        let report = context.nvml
        if let unavailable = context.nvmlUnavailableOutcome { return unavailable }
        let utilization = context.deployment.vllm.gpuMemoryUtilization
        let processes = context.host.processes()
        let names = Dictionary(processes.map { ($0.pid, $0.name) }, uniquingKeysWith: { first, _ in first })
        let orphans = processes.filter { $0.name.hasPrefix("VLLM::") }
        var outcomes: [CheckOutcome] = []
        for gpu in report.selected.prefix(context.requiredGPUs) {
            let need = UInt64(Double(gpu.memoryTotal) * utilization)
            guard gpu.memoryFree < need else { continue }
            let holders = gpu.processes.map { "\($0.pid) \(names[$0.pid] ?? "?") \(gib($0.usedBytes))" }
            outcomes.append(.fail("GPU \(gpu.index): \(gib(gpu.memoryFree)) free of \(gib(gpu.memoryTotal)), gpu_memory_utilization \(utilization) needs \(gib(need))"
                                  + (holders.isEmpty ? "" : "; held by: " + holders.joined(separator: ", ")),
                                  hint: "stop the processes holding GPU memory, or lower vllm.gpu_memory_utilization", transient: true))
        }
        if !orphans.isEmpty {
            let list = orphans.map { "\($0.pid) \($0.name)" }.joined(separator: ", ")
            outcomes.append(.fail("orphaned vLLM engine processes from an earlier run: \(list)",
                                  hint: "kill them (`kill \(orphans.map { String($0.pid) }.joined(separator: " "))`); KillMode=mixed in the unit prevents this",
                                  transient: true))
        }
        let summary = report.selected.prefix(context.requiredGPUs).map { "GPU \($0.index) \(gib($0.memoryFree)) free of \(gib($0.memoryTotal))" }
        return .combine(outcomes, passing: summary.joined(separator: ", ") + ", need \(Int(utilization * 100))%")
    }

    static let health = PreflightCheck("gpu.health", "no uncorrected ECC errors or pending row remaps", budget: .seconds(8)) { context in
        let report = context.nvml
        if let unavailable = context.nvmlUnavailableOutcome { return unavailable }
        var outcomes: [CheckOutcome] = []
        for gpu in report.selected {
            if let errors = gpu.uncorrectedECC, errors > 0 {
                outcomes.append(.fail("GPU \(gpu.index): \(errors) volatile uncorrected ECC error(s)", hint: "drain the host and run `nvidia-smi -q -d ECC`; reset the GPU or replace it"))
            }
            if gpu.remappedRowsFailed == true {
                outcomes.append(.fail("GPU \(gpu.index): row remapping failed", hint: "the GPU needs service: contact the vendor"))
            }
            if gpu.remappedRowsPending == true || gpu.retiredPagesPending == true {
                outcomes.append(.warn("GPU \(gpu.index): memory repair pending until the next GPU reset", hint: "reset the GPU (`nvidia-smi -r`) or reboot at the next window"))
            }
        }
        return .combine(outcomes, passing: "\(report.selected.count) GPU(s) without ECC errors or pending repairs")
    }

    static let persistence = PreflightCheck("gpu.persistence", "persistence mode keeps the driver initialised", budget: .seconds(8)) { context in
        let report = context.nvml
        if let unavailable = context.nvmlUnavailableOutcome { return unavailable }
        let off = report.selected.filter { $0.persistenceEnabled == false }.map(\.index)
        guard off.isEmpty else {
            return .warn("persistence mode off on GPU \(off.map(String.init).joined(separator: ", ")): each start re-initialises the driver (seconds)",
                         hint: "enable nvidia-persistenced (`systemctl enable --now nvidia-persistenced`)")
        }
        return .pass("on for \(report.selected.count) GPU(s)")
    }

    static let devices = PreflightCheck("gpu.devices", "NVIDIA device nodes exist and the unit allows them") { context in
        let host = context.host
        var outcomes: [CheckOutcome] = []
        let report = context.nvml
        let indexes = report.failure == nil ? report.selected.map(\.index) : []
        var nodes = ["/dev/nvidiactl", "/dev/nvidia-uvm"] + indexes.map { "/dev/nvidia\($0)" }
        if indexes.isEmpty {
            nodes += (host.listDirectory("/dev") ?? []).filter { $0.hasPrefix("nvidia") && Int($0.dropFirst(6)) != nil }.sorted().map { "/dev/" + $0 }
        }
        for node in nodes {
            guard let info = host.fileInfo(node) else {
                outcomes.append(.fail("\(node) is missing", hint: "load the driver and create the nodes as root (`nvidia-modprobe -u -c=0`); NoNewPrivileges= stops vLLM from doing it"))
                continue
            }
            if info.kind != .characterDevice {
                outcomes.append(.fail("\(node) is not a character device", hint: "remove it and let the driver recreate it"))
            }
        }
        let groups = NVIDIADeviceGroups.parse(host.readFile("/proc/devices", limit: 65_536) ?? [])
        if groups.isEmpty {
            outcomes.append(.fail("/proc/devices lists no NVIDIA device group", hint: "the NVIDIA kernel module is not loaded: `modprobe nvidia`"))
        } else if !groups.contains("nvidia-uvm") {
            outcomes.append(.fail("nvidia-uvm is not loaded", hint: "`modprobe nvidia-uvm` (CUDA needs it), e.g. via /etc/modules-load.d"))
        }
        let uncovered = groups.filter { !NVIDIADeviceGroups.allowedByUnit.contains($0) }
        if !uncovered.isEmpty {
            outcomes.append(.warn("device group(s) \(uncovered.joined(separator: ", ")) are not in the unit's DeviceAllow=",
                                  hint: "add `DeviceAllow=char-\(uncovered[0]) rw` to a drop-in if vLLM needs them"))
        }
        return .combine(outcomes, passing: "\(nodes.count) node(s) present; groups \(groups.joined(separator: ", ")) allowed")
    }

    static func cudaVersionText(_ version: Int) -> String { "\(version / 1000).\((version % 1000) / 10)" }
}

/// The NVIDIA character-device groups of `/proc/devices` and those the rendered unit allows.
public enum NVIDIADeviceGroups {
    /// `DeviceAllow=char-<group>` entries the vLLM unit renders, with their access.
    public static let unitEntries: [(group: String, access: String)] = [
        ("nvidia-frontend", "rw"), ("nvidiactl", "rw"), ("nvidia", "rw"), ("nvidia-uvm", "rw"), ("nvidia-caps", "r"),
    ]
    static var allowedByUnit: Set<String> { Set(unitEntries.map(\.group)) }

    /// Group names under "Character devices:" that start with `nvidia`.
    static func parse(_ bytes: [UInt8]) -> [String] {
        var inCharacterSection = false
        var groups: [String] = []
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("Character devices:") { inCharacterSection = true; continue }
            if line.hasPrefix("Block devices:") { inCharacterSection = false; continue }
            guard inCharacterSection, let name = line.split(separator: " ").last, name.hasPrefix("nvidia") else { continue }
            if !groups.contains(String(name)) { groups.append(String(name)) }
        }
        return groups
    }
}

/// Bytes as GiB with one decimal, the unit operators think of GPU memory in.
func gib(_ bytes: UInt64) -> String {
    let tenths = (bytes * 10 + (1 << 29)) >> 30
    return "\(tenths / 10).\(tenths % 10) GiB"
}
