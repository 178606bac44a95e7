#if canImport(Glibc)
import Glibc
#endif

/// NVML loaded with `dlopen` at run time: no link-time dependency, so the same binary runs (and reports clearly)
/// on hosts without a driver. Missing symbols read as "not supported by this driver".
struct NVMLLibrary {
    typealias Device = OpaquePointer
    private typealias NoArgs = @convention(c) () -> Int32
    private typealias UIntOut = @convention(c) (UnsafeMutablePointer<UInt32>) -> Int32
    private typealias IntOut = @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    private typealias StringOut = @convention(c) (UnsafeMutablePointer<CChar>, UInt32) -> Int32
    private typealias HandleByIndex = @convention(c) (UInt32, UnsafeMutablePointer<Device?>) -> Int32
    private typealias HandleByUUID = @convention(c) (UnsafePointer<CChar>, UnsafeMutablePointer<Device?>) -> Int32
    private typealias DeviceString = @convention(c) (Device, UnsafeMutablePointer<CChar>, UInt32) -> Int32
    private typealias DeviceBytes = @convention(c) (Device, UnsafeMutableRawPointer) -> Int32
    private typealias DeviceUInt = @convention(c) (Device, UnsafeMutablePointer<UInt32>) -> Int32
    private typealias DeviceECC = @convention(c) (Device, UInt32, UInt32, UnsafeMutablePointer<UInt64>) -> Int32
    private typealias DeviceRemapped = @convention(c) (Device, UnsafeMutablePointer<UInt32>, UnsafeMutablePointer<UInt32>,
                                                       UnsafeMutablePointer<UInt32>, UnsafeMutablePointer<UInt32>) -> Int32
    private typealias DeviceCapability = @convention(c) (Device, UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Int32
    private typealias DeviceProcesses = @convention(c) (Device, UnsafeMutablePointer<UInt32>, UnsafeMutableRawPointer?) -> Int32

    static let success: Int32 = 0
    private static let insufficientSize: Int32 = 7

    private let handle: UnsafeMutableRawPointer

    /// Opens `libnvidia-ml.so.1` (the versioned name; the bare `.so` exists only with development packages).
    static func load(path: String = "libnvidia-ml.so.1") -> Result<NVMLLibrary, NVMLReport.Failure> {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "not found"
            return .failure(.libraryNotFound(reason))
        }
        return .success(NVMLLibrary(handle: handle))
    }

    private func symbol<T>(_ name: String, as type: T.Type) -> T? {
        guard let pointer = dlsym(handle, name) else { return nil }
        return unsafeBitCast(pointer, to: type)
    }

    func initialize() -> Int32 { symbol("nvmlInit_v2", as: NoArgs.self)?() ?? 13 }
    func shutdown() { _ = symbol("nvmlShutdown", as: NoArgs.self)?() }

    func deviceCount() -> Int? {
        var count: UInt32 = 0
        return symbol("nvmlDeviceGetCount_v2", as: UIntOut.self)?(&count) == Self.success ? Int(count) : nil
    }

    func cudaDriverVersion() -> Int? {
        var version: Int32 = 0
        return symbol("nvmlSystemGetCudaDriverVersion_v2", as: IntOut.self)?(&version) == Self.success ? Int(version) : nil
    }

    func driverVersion() -> String? {
        var buffer = [CChar](repeating: 0, count: 96)
        guard symbol("nvmlSystemGetDriverVersion", as: StringOut.self)?(&buffer, 96) == Self.success else { return nil }
        return String(cString: buffer)
    }

    func device(index: Int) -> Device? {
        var device: Device?
        guard symbol("nvmlDeviceGetHandleByIndex_v2", as: HandleByIndex.self)?(UInt32(index), &device) == Self.success else { return nil }
        return device
    }

    func device(uuid: String) -> Device? {
        var device: Device?
        guard symbol("nvmlDeviceGetHandleByUUID", as: HandleByUUID.self)?(uuid, &device) == Self.success else { return nil }
        return device
    }

    func index(of device: Device) -> Int? {
        var index: UInt32 = 0
        return symbol("nvmlDeviceGetIndex", as: DeviceUInt.self)?(device, &index) == Self.success ? Int(index) : nil
    }

    func string(_ name: String, _ device: Device) -> String {
        var buffer = [CChar](repeating: 0, count: 96)
        guard symbol(name, as: DeviceString.self)?(device, &buffer, 96) == Self.success else { return "" }
        return String(cString: buffer)
    }

    /// `nvmlMemory_t` is `{ total, free, used }` as three `unsigned long long`.
    func memory(_ device: Device) -> (total: UInt64, free: UInt64)? {
        var words = [UInt64](repeating: 0, count: 3)
        let status = words.withUnsafeMutableBytes { symbol("nvmlDeviceGetMemoryInfo", as: DeviceBytes.self)?(device, $0.baseAddress!) }
        return status == Self.success ? (words[0], words[1]) : nil
    }

    func flag(_ name: String, _ device: Device) -> Bool? {
        var state: UInt32 = 0
        return symbol(name, as: DeviceUInt.self)?(device, &state) == Self.success ? state == 1 : nil
    }

    /// Volatile uncorrected ECC errors (`NVML_MEMORY_ERROR_TYPE_UNCORRECTED`, `NVML_VOLATILE_ECC`).
    func uncorrectedECC(_ device: Device) -> UInt64? {
        var count: UInt64 = 0
        return symbol("nvmlDeviceGetTotalEccErrors", as: DeviceECC.self)?(device, 1, 0, &count) == Self.success ? count : nil
    }

    func remappedRows(_ device: Device) -> (pending: Bool, failed: Bool)? {
        var corrected: UInt32 = 0, uncorrected: UInt32 = 0, pending: UInt32 = 0, failed: UInt32 = 0
        let status = symbol("nvmlDeviceGetRemappedRows", as: DeviceRemapped.self)?(device, &corrected, &uncorrected, &pending, &failed)
        return status == Self.success ? (pending != 0, failed != 0) : nil
    }

    func computeCapability(_ device: Device) -> (major: Int, minor: Int)? {
        var major: Int32 = 0, minor: Int32 = 0
        let status = symbol("nvmlDeviceGetCudaComputeCapability", as: DeviceCapability.self)?(device, &major, &minor)
        return status == Self.success ? (Int(major), Int(minor)) : nil
    }

    /// `nvmlProcessInfo_t` (v3): pid at offset 0, used memory at offset 8, 24 bytes per entry.
    func computeProcesses(_ device: Device) -> [(pid: Int, usedBytes: UInt64)] {
        guard let call = symbol("nvmlDeviceGetComputeRunningProcesses_v3", as: DeviceProcesses.self) else { return [] }
        var count: UInt32 = 0
        let first = call(device, &count, nil)
        guard first == Self.success || first == Self.insufficientSize, count > 0 else { return [] }
        count += 8  // processes may start between the two calls
        let stride = 24
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: Int(count) * stride, alignment: 8)
        defer { buffer.deallocate() }
        guard call(device, &count, buffer) == Self.success else { return [] }
        return (0..<Int(count)).map { index in
            let entry = buffer + index * stride
            return (Int(entry.load(as: UInt32.self)), entry.load(fromByteOffset: 8, as: UInt64.self))
        }
    }
}

extension NVMLReport {
    /// One NVML pass: initialise, read system facts and every selected GPU, shut down.
    static func gather(library: NVMLLibrary, selection: GPUSelection) -> NVMLReport {
        let status = library.initialize()
        guard status == NVMLLibrary.success else { return .failed(Failure(nvmlReturn: status)) }
        defer { library.shutdown() }
        var report = NVMLReport(totalCount: library.deviceCount() ?? 0, cudaDriverVersion: library.cudaDriverVersion(),
                                driverVersion: library.driverVersion())
        var devices: [NVMLLibrary.Device] = []
        switch selection {
        case .all:
            devices = (0..<report.totalCount).compactMap { library.device(index: $0) }
        case .listed(let entries):
            for entry in entries {
                let device = Int(entry).flatMap { $0 >= 0 ? library.device(index: $0) : nil } ?? library.device(uuid: entry)
                if let device { devices.append(device) } else { report.unmatchedSelection.append(entry) }
            }
        }
        for device in devices {
            let memory = library.memory(device) ?? (0, 0)
            let remapped = library.remappedRows(device)
            report.selected.append(GPU(
                index: library.index(of: device) ?? -1,
                uuid: library.string("nvmlDeviceGetUUID", device),
                name: library.string("nvmlDeviceGetName", device),
                memoryTotal: memory.total, memoryFree: memory.free,
                persistenceEnabled: library.flag("nvmlDeviceGetPersistenceMode", device),
                uncorrectedECC: library.uncorrectedECC(device),
                remappedRowsPending: remapped?.pending, remappedRowsFailed: remapped?.failed,
                retiredPagesPending: library.flag("nvmlDeviceGetRetiredPagesPendingStatus", device),
                computeCapability: library.computeCapability(device),
                processes: library.computeProcesses(device)))
        }
        return report
    }
}

extension NVMLReport.Failure {
    /// Maps `nvmlReturn_t` codes that deserve their own message.
    init(nvmlReturn code: Int32) {
        switch code {
        case 9: self = .driverNotLoaded
        case 18: self = .versionMismatch
        case 4: self = .noPermission
        case 17: self = .blockedByOperatingSystem
        case 12: self = .libraryNotFound("NVML_ERROR_LIBRARY_NOT_FOUND")
        default:
            let names: [Int32: String] = [1: "NVML_ERROR_UNINITIALIZED", 2: "NVML_ERROR_INVALID_ARGUMENT", 3: "NVML_ERROR_NOT_SUPPORTED",
                                          6: "NVML_ERROR_NOT_FOUND", 13: "NVML_ERROR_FUNCTION_NOT_FOUND", 15: "NVML_ERROR_GPU_IS_LOST",
                                          16: "NVML_ERROR_RESET_REQUIRED", 19: "NVML_ERROR_IN_USE", 999: "NVML_ERROR_UNKNOWN"]
            self = .other(code: code, name: names[code] ?? "NVML error")
        }
    }
}
