import WardenConfig
import WardenPreflight

/// Where the installed pieces live; the defaults are what `warden install` writes.
public struct InstallLayout: Sendable, Equatable {
    public var wardenBinary = "/usr/local/bin/warden"
    public var startScript = "/usr/local/lib/warden/start-vllm.sh"
    public var deploymentFile = Deployment.defaultPath
    public var unitDirectory = "/etc/systemd/system"
    /// Service account of the gateway (no GPU access, owns the key store).
    public var gatewayUser = "warden"

    public init(deploymentFile: String = Deployment.defaultPath) {
        self.deploymentFile = deploymentFile
    }
}

/// The files `warden unit render` writes, by name.
public struct RenderedUnits: Sendable, Equatable {
    public var vllmService: String
    public var gatewayService: String
    public var startScript: String
    public var environmentTemplate: String

    public var files: [(name: String, contents: String)] {
        [("vllm.service", vllmService), ("warden-gateway.service", gatewayService), ("start-vllm.sh", startScript), ("vllm.env", environmentTemplate)]
    }
}

/// Renders the hardened units, the start script and the key-file template from one deployment.
public enum UnitRenderer {
    public static func render(_ deployment: Deployment, systemd: SystemdVersion, layout: InstallLayout = InstallLayout()) -> RenderedUnits {
        RenderedUnits(vllmService: vllmService(deployment, systemd: systemd, layout: layout),
                      gatewayService: gatewayService(deployment, systemd: systemd, layout: layout),
                      startScript: startScript(deployment, layout: layout),
                      environmentTemplate: environmentTemplate(deployment))
    }

    static func header(_ what: String, _ systemd: SystemdVersion) -> [String] {
        ["\(what), rendered by `warden unit render` (vLLM Warden \(WardenVersion.string)) for systemd \(systemd).",
         "Edit the deployment file and render again rather than editing this file; add local changes in a drop-in."]
    }

    /// What vLLM reads or writes from its first second: a model given as a path outside the models directory too.
    static func mountedPaths(_ deployment: Deployment) -> [String] {
        var paths = [deployment.paths.models, deployment.vllm.venv, deployment.paths.state, deployment.paths.cache]
        let model = deployment.vllm.model
        if model.hasPrefix("/"), !model.hasPrefix(deployment.paths.models + "/") { paths.append(model) }
        return paths
    }

    static func vllmService(_ deployment: Deployment, systemd: SystemdVersion, layout: InstallLayout) -> String {
        var unit = UnitFile(header: header("vLLM under a hardened sandbox", systemd))
        unit.section("Unit") { lines in
            lines.add("Description", "vLLM OpenAI-compatible server (\(deployment.vllm.servedModelName))")
            lines.add("Documentation", "https://docs.vllm.ai/")
            lines.add("After", "network-online.target nvidia-persistenced.service")
            lines.add("Wants", "network-online.target")
            lines.add("RequiresMountsFor", mountedPaths(deployment).map(unitPath).joined(separator: " "),
                      "models, venv and caches on a network or late filesystem are mounted before preflight looks for them")
            lines.add("StartLimitIntervalSec", "1800", "a failed start takes minutes: stop after 3 within 30 minutes instead of looping")
            lines.add("StartLimitBurst", "3")
        }
        unit.section("Service") { lines in
            lines.add("Type", "exec")
            lines.add("User", deployment.vllm.user)
            lines.add("Group", deployment.vllm.group)
            lines.add("EnvironmentFile", deployment.vllm.envFile, "VLLM_API_KEY lives here (0640 root:\(deployment.vllm.group)), never on the command line")
            for (index, variable) in deployment.vllmEnvironment.enumerated() {
                lines.add("Environment", environmentAssignment(variable.name, variable.value), index == 0 ? "every cache redirected to writable, service-owned directories; telemetry off" : nil)
            }
            for property in VLLMSandbox.writablePaths(for: deployment) { lines.add(property.key, property.value) }
            let readOnly = [deployment.paths.models] + (deployment.vllm.isLocalModel && !deployment.vllm.model.hasPrefix(deployment.paths.models + "/") ? [deployment.vllm.model] : [])
            lines.add("ReadOnlyPaths", readOnly.map(unitPath).joined(separator: " "), "models and weights are read-only to vLLM")
            lines.add("ExecStart", layout.startScript, "runs `warden preflight` in this sandbox first, then execs vLLM")
            lines.add("Restart", "on-failure")
            lines.add("RestartPreventExitStatus", "\(usageExitStatus) \(Preflight.permanentFailureExitStatus)",
                      "a failure the operator must fix (preflight exit 3, a bad deployment file or vLLM flag: 2) is not retried")
            lines.add("RestartSec", "30s")
            if systemd >= GatedDirective.restartBackoff {
                lines.add("RestartSteps", "5")
                lines.add("RestartMaxDelaySec", "10min")
            }
            lines.add("TimeoutStartSec", "900", "model load and compilation take minutes")
            lines.add("TimeoutStopSec", String(stopTimeout(deployment)), "longer than --shutdown-timeout (\(deployment.vllm.shutdownTimeout) s) so vLLM drains before SIGKILL")
            lines.add("KillMode", "mixed", "SIGTERM to vLLM only; the final SIGKILL reaches every engine and worker process")
            lines.add("LimitNOFILE", "65535")
            for property in VLLMSandbox.properties(for: deployment, systemd: systemd) {
                lines.add(property.key, property.value, property.comment)
            }
        }
        unit.section("Install") { $0.add("WantedBy", "multi-user.target") }
        return unit.text
    }

    /// vLLM drains for `shutdown_timeout`; systemd waits 30 s more before SIGKILL.
    public static func stopTimeout(_ deployment: Deployment) -> Int { deployment.vllm.shutdownTimeout + 30 }

    static func gatewayService(_ deployment: Deployment, systemd: SystemdVersion, layout: InstallLayout) -> String {
        let gateway = deployment.gateway
        let listen = ListenAddress(gateway.listen)
        let privilegedPort = (listen?.port ?? 8080) < 1024
        // The firewall pins the gateway to local clients, trusted proxies and vLLM; it is left off when a peer
        // cannot be named by address (vLLM by host name, or an admin listener scraped from elsewhere).
        let upstreamHost = UpstreamAddress(gateway.upstream)?.host ?? "localhost"
        let upstreamPeer = isLoopbackHost(upstreamHost) ? nil : upstreamHost
        let adminLocal = ListenAddress(gateway.adminListen).map { isLoopbackHost($0.host) } ?? true
        let firewalled = isLoopbackHost(listen?.host ?? "") && adminLocal && upstreamPeer.map { IPAddress($0) != nil } != false
        let keyStoreDirectory = parent(of: gateway.keyStore)
        var unit = UnitFile(header: header("The vLLM Warden gateway (no GPU access)", systemd))
        unit.section("Unit") { lines in
            lines.add("Description", "vLLM Warden gateway in front of vLLM")
            lines.add("After", "network-online.target vllm.service")
            lines.add("Wants", "network-online.target")
            if keyStoreDirectory != "/var/lib/warden" { lines.add("RequiresMountsFor", unitPath(keyStoreDirectory)) }
        }
        unit.section("Service") { lines in
            lines.add("Type", "notify", "ready once both listeners accept: `systemctl start` waits for it, and a reload never finds SIGHUP untrapped")
            lines.add("User", layout.gatewayUser)
            lines.add("Group", layout.gatewayUser)
            lines.add("LoadCredential", "\(gatewayKeyFileCredential):\(deployment.vllm.envFile)",
                      "vLLM's key file, copied by systemd into a directory only this service reads; the gateway takes VLLM_API_KEY from it, and the file's other lines (HF_TOKEN) never enter its environment")
            lines.add("ExecStart", "\(layout.wardenBinary) gateway --config \(layout.deploymentFile)")
            lines.add("ExecReload", "/bin/kill -HUP $MAINPID", "reloads keys, allow-list and limits without dropping connections")
            lines.add("WatchdogSec", "30s", "the gateway pings every 7.5 s while each of its event loops still runs tasks; a stuck one gets it restarted")
            lines.add("Restart", "on-failure")
            lines.add("RestartSec", "2s")
            lines.add("TimeoutStopSec", String(gateway.drainTimeout + 15), "longer than gateway.drain_timeout (\(gateway.drainTimeout) s)")
            lines.add("LimitNOFILE", "65535", "two descriptors per proxied request; systemd's default soft limit of 1024 is exhausted by idle clients")
            lines.add("StateDirectory", "warden", "the key store")
            lines.add("StateDirectoryMode", "0700")
            if keyStoreDirectory != "/var/lib/warden" {
                lines.add("ReadWritePaths", unitPath(keyStoreDirectory), "gateway.key_store lives outside the state directory")
            }
            lines.add("ProtectSystem", "strict")
            lines.add("ProtectHome", "true")
            lines.add("PrivateTmp", systemd >= GatedDirective.privateTmpDisconnected ? "disconnected" : "true")
            lines.add("PrivateDevices", "true", "no GPU, no devices at all")
            lines.add("DevicePolicy", "closed")
            lines.add("PrivateMounts", "true")
            lines.add("PrivateUsers", privilegedPort ? "false" : "true")
            lines.add("NoNewPrivileges", "true")
            lines.add("ProtectKernelTunables", "true")
            lines.add("ProtectKernelModules", "true")
            lines.add("ProtectKernelLogs", "true")
            lines.add("ProtectControlGroups", systemd >= GatedDirective.protectControlGroupsPrivate ? "private" : "true")
            lines.add("ProtectClock", "true")
            lines.add("ProtectHostname", "true")
            lines.add("ProtectProc", "invisible")
            lines.add("ProcSubset", "pid")
            lines.add("LockPersonality", "true")
            lines.add("RestrictSUIDSGID", "true")
            lines.add("RestrictRealtime", "true")
            lines.add("RestrictNamespaces", "true")
            lines.add("MemoryDenyWriteExecute", "true")
            lines.add("KeyringMode", "private")
            lines.add("CapabilityBoundingSet", privilegedPort ? "CAP_NET_BIND_SERVICE" : "")
            lines.add("AmbientCapabilities", privilegedPort ? "CAP_NET_BIND_SERVICE" : "")
            lines.add("SystemCallArchitectures", "native")
            lines.add("SystemCallFilter", "@system-service")
            lines.add("SystemCallFilter", "~@privileged @resources")
            lines.add("SystemCallErrorNumber", "EPERM")
            lines.add("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6")
            if firewalled {
                let peers = ["localhost"] + gateway.trustedProxies + (upstreamPeer.map { [$0] } ?? [])
                lines.add("IPAddressDeny", "any", "the gateway listens on loopback: only local clients, trusted proxies and vLLM")
                lines.add("IPAddressAllow", peers.joined(separator: " "))
            }
            lines.add("UMask", "0077")
            lines.add("RemoveIPC", "true")
        }
        unit.section("Install") { $0.add("WantedBy", "multi-user.target") }
        return unit.text
    }

    /// Exit status of `warden` for a bad deployment file, and of vLLM's argument parser for a bad flag.
    static let usageExitStatus = 2

    /// Runs `warden preflight`, then ends in `exec vllm serve …`, so vLLM itself is the main PID and receives
    /// systemd's SIGTERM. Preflight runs here rather than in `ExecStartPre=` because systemd applies
    /// `RestartPreventExitStatus=` to the main process only (systemd#11868): from `ExecStartPre=`, a permanent
    /// failure would be retried until the start limit locks the unit.
    static func startScript(_ deployment: Deployment, layout: InstallLayout) -> String {
        let vllm = deployment.vllm
        var groups: [[String]] = [[vllm.model], ["--served-model-name", vllm.servedModelName], ["--host", vllm.host],
                                  ["--port", String(vllm.port)], ["--gpu-memory-utilization", String(vllm.gpuMemoryUtilization)],
                                  ["--tensor-parallel-size", String(vllm.tensorParallelSize)]]
        if vllm.pipelineParallelSize > 1 { groups.append(["--pipeline-parallel-size", String(vllm.pipelineParallelSize)]) }
        if let maxModelLen = vllm.maxModelLen { groups.append(["--max-model-len", String(maxModelLen)]) }
        if vllm.shutdownTimeout > 0 { groups.append(["--shutdown-timeout", String(vllm.shutdownTimeout)]) }
        groups.append(["--disable-fastapi-docs"])
        // Extra arguments stay in order; a flag and the values after it share a line.
        for argument in vllm.extraArgs {
            if argument.hasPrefix("-") || groups.last?.first?.hasPrefix("-") != true { groups.append([argument]) } else { groups[groups.count - 1].append(argument) }
        }
        var lines = [
            "#!/bin/sh",
            "# Rendered by `warden unit render` from the deployment file. The API key reaches vLLM through",
            "# VLLM_API_KEY (EnvironmentFile=), never through this command line, where `ps` would show it.",
            "set -eu",
            "# Exit 3 (a failure to fix first) is in RestartPreventExitStatus=; exit 1 (may clear by itself) is retried.",
            "\(shellQuoted(layout.wardenBinary)) preflight --config \(shellQuoted(layout.deploymentFile)) || exit $?",
            "exec \(shellQuoted(vllm.venv + "/bin/vllm")) serve \\",
        ]
        for (index, group) in groups.enumerated() {
            lines.append("    " + group.map(shellQuoted).joined(separator: " ") + (index == groups.count - 1 ? "" : " \\"))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func environmentTemplate(_ deployment: Deployment) -> String {
        """
        # Secrets for vllm.service and warden-gateway.service. Mode 0640, owner root:\(deployment.vllm.group).
        # `warden install` writes a generated key here and never overwrites an existing one.
        # Generate one yourself with: openssl rand -hex 32
        VLLM_API_KEY=

        """
    }
}
