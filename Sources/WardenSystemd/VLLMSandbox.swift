import WardenConfig
import WardenPreflight

/// One sandbox setting of the vLLM unit. The unit file and `warden selftest` (as `systemd-run -p` properties)
/// are rendered from the same list, so the smoke test runs under exactly the unit's sandbox.
public struct SandboxProperty: Sendable, Equatable {
    public var key: String
    public var value: String
    /// Settings that are relaxed together when `warden selftest` looks for the one that breaks CUDA.
    public var group: String
    var comment: String?

    init(_ key: String, _ value: String, group: String? = nil, _ comment: String? = nil) {
        self.key = key
        self.value = value
        self.group = group ?? key
        self.comment = comment
    }
}

/// The hardened sandbox of `vllm.service`: what CUDA, Triton and torch.compile were measured to work under
/// (see the README's systemd section), gated on the target systemd version.
public enum VLLMSandbox {
    public static func properties(for deployment: Deployment, systemd: SystemdVersion) -> [SandboxProperty] {
        var list: [SandboxProperty] = [
            .init("ProtectSystem", "strict", "read-only OS; caches are redirected to StateDirectory=/CacheDirectory="),
            .init("ProtectHome", "true"),
            .init("PrivateTmp", systemd >= GatedDirective.privateTmpDisconnected ? "disconnected" : "true"),
            .init("PrivateMounts", "true", "explicit, so offline and live security scores agree"),
            .init("NoNewPrivileges", "true", "device nodes must exist before start (nvidia-persistenced or nvidia-modprobe as root)"),
            .init("ProtectKernelTunables", "true"),
            .init("ProtectKernelModules", "true"),
            .init("ProtectKernelLogs", "true"),
            .init("ProtectControlGroups", systemd >= GatedDirective.protectControlGroupsPrivate ? "private" : "true"),
            .init("ProtectClock", "true", "safe only together with DevicePolicy=closed and the NVIDIA DeviceAllow= below"),
            .init("ProtectHostname", "true"),
            .init("ProtectProc", "invisible"),
            .init("LockPersonality", "true"),
            .init("RestrictSUIDSGID", "true"),
            .init("RestrictRealtime", "true"),
            .init("RestrictNamespaces", "true"),
            .init("CapabilityBoundingSet", "", group: "Capabilities"),
            .init("AmbientCapabilities", "", group: "Capabilities"),
            .init("DevicePolicy", "closed", group: "Devices", "only the NVIDIA devices (names from /proc/devices)"),
        ]
        for entry in NVIDIADeviceGroups.unitEntries {
            list.append(.init("DeviceAllow", "char-\(entry.group) \(entry.access)", group: "Devices"))
        }
        list += [
            .init("SystemCallArchitectures", "native"),
            .init("SystemCallFilter", "@system-service", group: "SystemCallFilter", "@resources stays allowed: CUDA needs sched_setaffinity and mbind"),
            .init("SystemCallFilter", "~@privileged", group: "SystemCallFilter"),
            .init("SystemCallErrorNumber", "EPERM", group: "SystemCallFilter", "a missed syscall becomes an error, not a killed worker"),
            .init("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK", "AF_UNIX for ZMQ ipc://, AF_NETLINK for psutil and NCCL interface discovery"),
            .init("IPAddressDeny", "any", group: "IPAddress", "loopback only: vLLM's TCPStore and KV ports listen on all interfaces"),
            .init("IPAddressAllow", (["localhost"] + deployment.systemd.ipAddressAllow).joined(separator: " "), group: "IPAddress"),
            .init("UMask", "0077"),
            .init("RemoveIPC", "true"),
        ]
        if deployment.systemd.memoryDenyWriteExecute {
            list.append(.init("MemoryDenyWriteExecute", "true", "set systemd.memory_deny_write_execute: false for numba-based n-gram speculation"))
        }
        return list
    }

    /// `StateDirectory=`/`CacheDirectory=` when the paths sit where systemd manages them, else `ReadWritePaths=`.
    static func writablePaths(for deployment: Deployment) -> [SandboxProperty] {
        var list: [SandboxProperty] = []
        for (path, base, key) in [(deployment.paths.state, "/var/lib/", "StateDirectory"), (deployment.paths.cache, "/var/cache/", "CacheDirectory")] {
            if path.hasPrefix(base), path.count > base.count {
                list.append(.init(key, unitPath(String(path.dropFirst(base.count))), group: "WritablePaths"))
                list.append(.init(key + "Mode", "0700", group: "WritablePaths"))
            } else {
                list.append(.init("ReadWritePaths", unitPath(path), group: "WritablePaths"))
            }
        }
        return list
    }
}
