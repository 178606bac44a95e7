import WardenConfig
import WardenSystemd

/// What every audit check sees.
struct AuditContext {
    let target: VLLMTarget
    let host: any AuditHost
    /// The Warden deployment file, when there is one.
    let deployment: Deployment?
    /// Where the live probe connects: `--url`, else the API server's own socket.
    let probeAddress: (host: String, port: Int)?

    /// The deployment Warden would render for this vLLM: the file's, else one built from what is running.
    var effectiveDeployment: Deployment {
        if let deployment { return deployment }
        var vllm = Deployment.VLLM(model: target.invocation?.model ?? "/srv/models/model")
        vllm.host = target.invocation?.host ?? "0.0.0.0"
        vllm.port = target.invocation?.port ?? 8000
        vllm.venv = target.venv ?? vllm.venv
        vllm.envFile = target.environmentFiles.last ?? vllm.envFile
        if let user = target.directives?.last("User") { vllm.user = user }
        if let group = target.directives?.last("Group") { vllm.group = group }
        return Deployment(vllm: vllm)
    }

    /// The API server answers on an address other machines can reach.
    var exposedBeyondLoopback: Bool {
        if !target.apiSockets.isEmpty { return target.apiSockets.contains { !$0.isLoopback } }
        guard let host = target.invocation?.host else { return target.invocation != nil }
        return !isLoopbackHost(host)
    }

    var systemdVersion: SystemdVersion {
        (try? host.commands.run("systemctl", ["--version"])).flatMap { SystemdVersion(systemctlOutput: $0.stdout) } ?? .debian12
    }
}
