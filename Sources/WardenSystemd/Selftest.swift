import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import WardenConfig

/// `warden selftest`: runs a smoke workload (CUDA by default) in a transient unit with exactly vllm.service's
/// sandbox; when it fails, reruns with one group of settings relaxed at a time and names the one that broke it.
public struct Selftest: Sendable {
    public struct Attempt: Sendable, Equatable {
        /// The sandbox group left out, or `nil` for the full sandbox; `"(no sandbox)"` for the bare run.
        public var relaxed: String?
        public var status: Int32
        public var output: String
    }

    public struct Report: Sendable, Equatable {
        public var attempts: [Attempt]
        public var passed: Bool { attempts.first?.status == 0 }
        /// The one setting whose removal made the workload pass.
        public var culprit: String? { passed ? nil : attempts.dropFirst().first { $0.status == 0 && $0.relaxed != Selftest.bare }?.relaxed }
        /// The workload fails even with no sandbox: the GPU stack itself is broken.
        public var failsWithoutSandbox: Bool { attempts.last?.relaxed == Selftest.bare && attempts.last?.status != 0 }
    }

    static let bare = "(no sandbox)"
    /// Most likely culprits first, so a failing host needs few reruns.
    static let relaxOrder = ["MemoryDenyWriteExecute", "SystemCallFilter", "RestrictAddressFamilies", "Devices", "ProtectProc",
                             "IPAddress", "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "ProtectKernelTunables",
                             "ProtectKernelModules", "ProtectControlGroups", "ProtectClock", "RestrictNamespaces", "PrivateMounts",
                             "SystemCallArchitectures", "LockPersonality", "RestrictRealtime", "RestrictSUIDSGID", "Capabilities"]

    let deployment: Deployment
    let systemd: SystemdVersion
    let workload: SelftestWorkload
    let runner: any CommandRunner

    public init(deployment: Deployment, systemd: SystemdVersion, workload: SelftestWorkload = .cuda, runner: any CommandRunner = ProcessRunner()) {
        self.deployment = deployment
        self.systemd = systemd
        self.workload = workload
        self.runner = runner
    }

    /// The `systemd-run` command line for the workload under `properties`.
    public func command(properties: [SandboxProperty], unitName: String) -> [String] {
        let vllm = deployment.vllm
        var arguments = ["--wait", "--pipe", "--quiet", "--collect", "--service-type=exec", "--unit=\(unitName)",
                         "-p", "User=\(vllm.user)", "-p", "Group=\(vllm.group)", "-p", "EnvironmentFile=-\(vllm.envFile)",
                         "-p", "LimitNOFILE=65535"]
        for variable in deployment.vllmEnvironment { arguments += ["-p", "Environment=\(variable.name)=\(variable.value)"] }
        for property in VLLMSandbox.writablePaths(for: deployment) + properties {
            arguments += ["-p", "\(property.key)=\(property.value)"]
        }
        // The source travels on the command line: a file of the operator's could sit where the sandbox hides it.
        return arguments + ["--", vllm.venv + "/bin/python", "-c", workload.source]
    }

    public func run() throws -> Report {
        let sandbox = VLLMSandbox.properties(for: deployment, systemd: systemd)
        var attempts = [try attempt(sandbox, relaxed: nil)]
        guard attempts[0].status != 0 else { return Report(attempts: attempts) }
        let groups = Self.relaxOrder.filter { group in sandbox.contains { $0.group == group } }
        for group in groups {
            let result = try attempt(sandbox.filter { $0.group != group }, relaxed: group)
            attempts.append(result)
            if result.status == 0 { return Report(attempts: attempts) }
        }
        attempts.append(try attempt([], relaxed: Self.bare))
        return Report(attempts: attempts)
    }

    private func attempt(_ properties: [SandboxProperty], relaxed: String?) throws -> Attempt {
        let name = "warden-selftest-\(getpid())-\(relaxed.map { $0.lowercased().filter(\.isLetter) } ?? "full")"
        let output = try runner.run("systemd-run", command(properties: properties, unitName: name))
        return Attempt(relaxed: relaxed, status: output.status, output: output.combined)
    }
}
