import WardenConfig
/// Checks of the host around vLLM: network port, file systems, memory, limits and the key file.
enum SystemChecks {
    static let all: [PreflightCheck] = [port, caches, disk, shm, memory, nofile, envFile]

    static let port = PreflightCheck("net.port", "vLLM's address can be bound") { context in
        let vllm = context.deployment.vllm
        if let error = context.host.bindError(host: vllm.host, port: vllm.port) {
            return .fail("cannot bind \(vllm.host):\(vllm.port): \(error)",
                         hint: "another process listens there (an earlier vLLM? `ss -ltnp 'sport = :\(vllm.port)'`); stop it or change vllm.port",
                         transient: error.contains("in use"))  // an exiting vLLM frees it; a bad address never clears
        }
        if !isLoopbackHost(vllm.host) {
            return .warn("\(vllm.host):\(vllm.port) is free, but vLLM would listen beyond loopback, bypassing the gateway",
                         hint: "set vllm.host: 127.0.0.1 and let clients in through warden gateway")
        }
        return .pass("\(vllm.host):\(vllm.port) is free")
    }

    static let caches = PreflightCheck("fs.caches", "every cache directory is writable by the service user") { context in
        let deployment = context.deployment
        guard let account = context.serviceAccount else {
            return .fail("service user \(deployment.vllm.user) does not exist", hint: "run `warden install`, or `useradd --system \(deployment.vllm.user)`")
        }
        var outcomes: [CheckOutcome] = []
        for (name, path) in deployment.cacheEnvironment {
            let target = deployment.vllmEnvironment.last { $0.name == name }?.value ?? path
            // A missing directory is fine when its nearest existing ancestor lets the tools create it.
            var probe = target
            while context.host.fileInfo(probe) == nil, probe != "/" {
                probe = String(probe[..<(probe.lastIndex(of: "/") ?? probe.startIndex)])
                if probe.isEmpty { probe = "/" }
            }
            switch context.host.probeWrite(directory: probe, as: account) {
            case .writable:
                if let info = context.host.fileInfo(probe), probe == target, info.mode & 0o022 != 0 {
                    outcomes.append(.warn("\(name)=\(target) is writable by others (mode \(String(info.mode, radix: 8))); caches hold code that is loaded without checks",
                                          hint: "`chmod 700 \(target)`"))
                }
            case .missing, .denied:
                outcomes.append(.fail("\(name)=\(target) is not writable by \(account.name)" + (probe == target ? "" : " (nor is \(probe), to create it)"),
                                      hint: "run `warden install` (StateDirectory=/CacheDirectory= own them), or `chown -R \(account.name) \(probe)`"))
            }
        }
        return .combine(outcomes, passing: "\(deployment.cacheEnvironment.count) cache locations writable by \(account.name)")
    }

    static let gigabyte: UInt64 = 1 << 30

    static let disk = PreflightCheck("fs.disk", "enough free space for the model and compile caches") { context in
        let deployment = context.deployment
        var outcomes: [CheckOutcome] = []
        var summary: [String] = []
        let cacheTarget = existingAncestor(deployment.paths.cache, host: context.host)
        if let space = context.host.filesystemSpace(cacheTarget) {
            summary.append("\(gib(space.available)) free for caches")
            if space.available < 2 * gigabyte {
                outcomes.append(.fail("only \(gib(space.available)) free under \(cacheTarget): compile caches will fail to write", hint: "free space or move paths.cache"))
            } else if space.available < 10 * gigabyte {
                outcomes.append(.warn("only \(gib(space.available)) free under \(cacheTarget)", hint: "keep at least 10 GiB free for torch.compile and Triton caches"))
            }
        }
        let modelTarget = existingAncestor(deployment.vllm.isLocalModel ? deployment.vllm.model : deployment.paths.state, host: context.host)
        if let space = context.host.filesystemSpace(modelTarget) {
            summary.append("\(gib(space.available)) free for models")
            if !deployment.vllm.isLocalModel, space.available < 20 * gigabyte {
                outcomes.append(.warn("only \(gib(space.available)) free where the hub model would be downloaded", hint: "download the model to a larger filesystem first"))
            }
        }
        return .combine(outcomes, passing: summary.joined(separator: ", "))
    }

    static let shm = PreflightCheck("fs.shm", "/dev/shm is large enough for multi-GPU communication") { context in
        guard context.requiredGPUs > 1 else { return .skip("one GPU: NCCL shared memory not used") }
        guard let space = context.host.filesystemSpace("/dev/shm") else {
            return .fail("/dev/shm is missing", hint: "mount a tmpfs at /dev/shm (NCCL needs it for tensor parallelism)")
        }
        guard space.available >= gigabyte else {
            return .fail("/dev/shm has \(gib(space.available)) free; NCCL needs at least 1 GiB with tensor parallelism",
                         hint: "enlarge it (`mount -o remount,size=16G /dev/shm`; in containers `--shm-size`)")
        }
        return .pass("\(gib(space.available)) free in /dev/shm")
    }

    static let memory = PreflightCheck("sys.memory", "enough RAM to load the model") { context in
        guard let available = context.host.availableMemory() else {
            return .warn("MemAvailable is not readable (ProcSubset=pid hides /proc/meminfo)", hint: "run preflight with `+` in ExecStartPre= to see host memory")
        }
        let largestShard = largestWeightFile(context)
        let need = largestShard + 4 * gigabyte
        guard available >= need else {
            return .fail("\(gib(available)) RAM available; loading needs about \(gib(need)) (largest shard \(gib(largestShard)) + 4 GiB)",
                         hint: "stop other services or add swap; the kernel OOM killer ends loads that run short", transient: true)
        }
        return .pass("\(gib(available)) RAM available")
    }

    static let nofile = PreflightCheck("sys.nofile", "open-file limit allows vLLM's 65535") { context in
        let hard = context.host.openFileLimit().hard
        guard hard < 65_535 else { return .pass("hard limit \(hard)") }
        // systemd sets INVOCATION_ID for every unit: outside one, this is the limit of the shell, not of vLLM.
        guard context.host.environment["INVOCATION_ID"] != nil else {
            return .warn("this shell's hard RLIMIT_NOFILE is \(hard); vllm.service sets LimitNOFILE=65535 for vLLM itself",
                         hint: "nothing to change for the service: its own start runs this check under the unit's limit")
        }
        // The unit asked for 65535 and got less: systemd clamps what it may not grant, silently.
        let nrOpen = context.host.readFile("/proc/sys/fs/nr_open", limit: 32)
            .flatMap { Int(String(decoding: $0, as: UTF8.self).trimmed()) }
        let (reason, fix) = if let nrOpen, nrOpen < 65_535 {
            ("the kernel's fs.nr_open is \(nrOpen)", "`sysctl -w fs.nr_open=1048576`, and persist it in /etc/sysctl.d")
        } else {
            ("the service manager's own hard limit is lower and it may not raise it (no CAP_SYS_RESOURCE: a container?)",
             "raise the hard limit of whatever starts systemd (e.g. `--rlimit=RLIMIT_NOFILE=65535` for systemd-nspawn, LXC's lxc.prlimit.nofile)")
        }
        let detail = "LimitNOFILE=65535 in the unit was clamped to \(hard): \(reason); vLLM gets fewer descriptors than it asks for"
        return hard < 4_096 ? .fail(detail + " and will run out under load", hint: fix) : .warn(detail, hint: fix)
    }

    static let envFile = PreflightCheck("secrets.envfile", "the key file is private and holds a strong key") { context in
        let path = context.deployment.vllm.envFile
        let host = context.host
        guard let info = host.fileInfo(path) else {
            return .fail("\(path) does not exist", hint: "run `warden install`, which writes it with a generated key (mode 0640 root:\(context.deployment.vllm.group))")
        }
        var outcomes: [CheckOutcome] = []
        if info.uid != 0 { outcomes.append(.fail("\(path) is owned by uid \(info.uid), not root", hint: "`chown root:\(context.deployment.vllm.group) \(path)`")) }
        if info.mode & 0o007 != 0 {
            outcomes.append(.fail("\(path) is readable by everyone (mode \(String(info.mode, radix: 8)))", hint: "`chmod 640 \(path)`"))
        }
        if info.mode & 0o020 != 0 { outcomes.append(.fail("\(path) is writable by its group", hint: "`chmod 640 \(path)`")) }
        guard let bytes = host.readFile(path, limit: 65_536) else {
            outcomes.append(.fail("\(path) is not readable by this process (uid \(host.effectiveUID))", hint: "`chgrp \(context.deployment.vllm.group) \(path)`"))
            return .combine(outcomes, passing: "")
        }
        let key = environmentFileValue("VLLM_API_KEY", in: String(decoding: bytes, as: UTF8.self))
        switch key {
        case nil:
            outcomes.append(.fail("\(path) has no VLLM_API_KEY= line", hint: "add a key: `echo VLLM_API_KEY=$(openssl rand -hex 32) >> \(path)`"))
        case let key? where !Preflight.isStrongKey(key):
            outcomes.append(.fail("VLLM_API_KEY in \(path) is weak (\(key.count) characters; need ≥ 32 and no placeholder)",
                                  hint: "replace it: `openssl rand -hex 32`"))
        default:
            break
        }
        return .combine(outcomes, passing: "\(path) root-owned, mode \(String(info.mode, radix: 8)), strong VLLM_API_KEY")
    }


    static func existingAncestor(_ path: String, host: any PreflightHost) -> String {
        var current = path
        while host.fileInfo(current) == nil, current != "/" {
            current = String(current[..<(current.lastIndex(of: "/") ?? current.startIndex)])
            if current.isEmpty { current = "/" }
        }
        return current
    }

    /// The biggest weight file of a local model (what the loader holds in RAM at once), 0 when unknown.
    static func largestWeightFile(_ context: PreflightContext) -> UInt64 {
        let vllm = context.deployment.vllm
        guard vllm.isLocalModel, let entries = context.host.listDirectory(vllm.model) else { return 0 }
        return entries.filter { $0.hasSuffix(".safetensors") }.compactMap { context.host.fileInfo(vllm.model + "/" + $0)?.size }.max() ?? 0
    }
}

import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

extension Preflight {
    /// At least 32 characters, 10 distinct, and no placeholder word: what `secrets.envfile` and `warden audit` accept.
    public static func isStrongKey(_ key: String) -> Bool {
        let lowered = key.lowercased()
        let placeholders = ["changeme", "change-me", "secret", "password", "example", "xxxx", "your-key", "token"]
        return key.count >= 32 && Set(key).count >= 10 && !placeholders.contains { lowered.contains($0) }
    }
}
