/// What one NVML pass found: initialisation status, driver versions and one entry per selected GPU.
public struct NVMLReport: Sendable, Equatable {
    /// Why NVML could not be used, mapped from `nvmlReturn_t` or the loader.
    public enum Failure: Sendable, Equatable {
        case libraryNotFound(String)
        case driverNotLoaded
        case versionMismatch
        case noPermission
        case blockedByOperatingSystem
        case other(code: Int32, name: String)
        case timedOut
    }

    public struct GPU: Sendable, Equatable {
        public var index: Int
        public var uuid: String
        public var name: String
        public var memoryTotal: UInt64
        public var memoryFree: UInt64
        public var persistenceEnabled: Bool?
        /// Volatile uncorrected ECC errors; `nil` when not supported (consumer GPUs).
        public var uncorrectedECC: UInt64?
        public var remappedRowsPending: Bool?
        public var remappedRowsFailed: Bool?
        public var retiredPagesPending: Bool?
        public var computeCapability: (major: Int, minor: Int)?
        /// Processes holding memory on this GPU (pid, bytes).
        public var processes: [(pid: Int, usedBytes: UInt64)]

        public init(index: Int, uuid: String = "", name: String = "GPU", memoryTotal: UInt64, memoryFree: UInt64,
                    persistenceEnabled: Bool? = true, uncorrectedECC: UInt64? = 0, remappedRowsPending: Bool? = false,
                    remappedRowsFailed: Bool? = false, retiredPagesPending: Bool? = nil,
                    computeCapability: (major: Int, minor: Int)? = (9, 0), processes: [(pid: Int, usedBytes: UInt64)] = []) {
            self.index = index
            self.uuid = uuid
            self.name = name
            self.memoryTotal = memoryTotal
            self.memoryFree = memoryFree
            self.persistenceEnabled = persistenceEnabled
            self.uncorrectedECC = uncorrectedECC
            self.remappedRowsPending = remappedRowsPending
            self.remappedRowsFailed = remappedRowsFailed
            self.retiredPagesPending = retiredPagesPending
            self.computeCapability = computeCapability
            self.processes = processes
        }

        public static func == (lhs: GPU, rhs: GPU) -> Bool {
            lhs.index == rhs.index && lhs.uuid == rhs.uuid && lhs.memoryTotal == rhs.memoryTotal && lhs.memoryFree == rhs.memoryFree
                && lhs.processes.map(\.pid) == rhs.processes.map(\.pid)
        }
    }

    public var failure: Failure?
    /// All GPUs NVML counts (ignores `CUDA_VISIBLE_DEVICES`).
    public var totalCount: Int
    /// The GPUs vLLM will use, after `CUDA_VISIBLE_DEVICES`.
    public var selected: [GPU]
    /// Entries of `CUDA_VISIBLE_DEVICES` that match no GPU.
    public var unmatchedSelection: [String]
    /// `nvmlSystemGetCudaDriverVersion_v2`, e.g. 13000 for CUDA 13.0.
    public var cudaDriverVersion: Int?
    public var driverVersion: String?

    public init(failure: Failure? = nil, totalCount: Int = 0, selected: [GPU] = [], unmatchedSelection: [String] = [],
                cudaDriverVersion: Int? = nil, driverVersion: String? = nil) {
        self.failure = failure
        self.totalCount = totalCount
        self.selected = selected
        self.unmatchedSelection = unmatchedSelection
        self.cudaDriverVersion = cudaDriverVersion
        self.driverVersion = driverVersion
    }

    public static func failed(_ failure: Failure) -> NVMLReport { NVMLReport(failure: failure) }
}

extension NVMLReport.Failure {
    /// What happened, in words, and what to do about it.
    var explanation: (detail: String, hint: String) {
        switch self {
        case .libraryNotFound(let reason):
            return ("libnvidia-ml.so.1 could not be loaded (\(reason))",
                    "install the NVIDIA driver (e.g. `apt install nvidia-driver`), or run on a GPU host")
        case .driverNotLoaded:
            return ("NVML: the NVIDIA kernel driver is not loaded (NVML_ERROR_DRIVER_NOT_LOADED)",
                    "load it with `modprobe nvidia` or reboot after installing the driver")
        case .versionMismatch:
            return ("NVML: driver/library version mismatch (NVML_ERROR_LIB_RM_VERSION_MISMATCH)",
                    "the driver was upgraded without a reboot: reboot the host")
        case .noPermission:
            return ("NVML: no permission to open the GPU devices (NVML_ERROR_NO_PERMISSION)",
                    "check the unit's DeviceAllow= and that the service user may open /dev/nvidia*")
        case .blockedByOperatingSystem:
            return ("NVML: access blocked by the operating system or cgroups (NVML_ERROR_OPERATING_SYSTEM)",
                    "allow the NVIDIA devices in the unit: DevicePolicy=closed with DeviceAllow=char-nvidia-frontend rw etc.")
        case .other(let code, let name):
            return ("NVML failed with \(name) (\(code))", "run `nvidia-smi` as the service user to see the driver's own message")
        case .timedOut:
            return ("NVML did not answer within its time budget (hung driver call)",
                    "check `dmesg` for Xid errors; the GPU may need a reset or the host a reboot")
        }
    }
}

extension NVMLReport.Failure: Error {}
