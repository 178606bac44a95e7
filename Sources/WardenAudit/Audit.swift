import WardenConfig
import WardenPreflight

/// What `warden audit` found: the vLLM it looked at and every finding, worst first.
public struct AuditReport: Sendable {
    public var target: VLLMTarget
    public var findings: [Finding]
    /// Set when vLLM was not found on this host and only its HTTP surface at `--url` was audited.
    public var probedOnly: String?
    public var advisoryTableDate: String { AdvisoryTable.date }

    /// Findings at or above `severity`; `warden audit` exits 1 when there are any.
    public func findings(atLeast severity: Severity) -> [Finding] { findings.filter { $0.severity >= severity } }
}

/// Why an audit could not run at all.
public struct AuditError: Error, CustomStringConvertible, Equatable {
    public var description: String
}

/// `warden audit`: a read-only review of a vLLM already running on this host.
public enum Audit {
    /// Finds vLLM (by `unit`, else by process or unit contents) and runs every check; `url` overrides where the
    /// live probe connects. Throws when no vLLM is found or `url` is not `http://host:port`.
    public static func run(host: any AuditHost = LinuxHost(), deployment: Deployment? = nil, unit: String? = nil, url: String? = nil) throws -> AuditReport {
        let target = Discovery.find(unit: unit, host: host)
        // A unit named on the command line that systemd does not know is a typo, not a vLLM to audit.
        guard target.found, unit == nil || target.directives != nil else {
            // A vLLM on another machine (or in a container this host cannot see into): its HTTP surface is all there is.
            if unit == nil, let url { return try probeOnly(url: url, host: host, deployment: deployment) }
            throw AuditError(description: unit.map { "no unit \($0) (`systemctl cat \($0)` failed)" }
                ?? "found no running vLLM: no process runs `vllm serve` or vllm.entrypoints.openai.api_server, and no unit's ExecStart= starts one; "
                + "name it with --unit, or audit a vLLM elsewhere over HTTP with --url http://HOST:PORT")
        }
        let probe = try url.map(parse(url:)) ?? defaultProbeAddress(target)
        let context = AuditContext(target: target, host: host, deployment: deployment, probeAddress: probe)
        let findings = UnitAudit.findings(context) + SecretAudit.findings(context) + ExposureAudit.findings(context)
            + SettingAudit.findings(context) + AdvisoryAudit.findings(context) + HostAudit.findings(context)
        return AuditReport(target: target, findings: worstFirst(findings))
    }

    /// The live probe alone, for a vLLM not found among this host's processes and units (another machine, or one
    /// this account cannot see); the checks that need its host are named as not run. Nothing answering is an error:
    /// an audit that checked nothing must not pass.
    static func probeOnly(url: String, host: any AuditHost, deployment: Deployment?) throws -> AuditReport {
        let address = try parse(url: url)
        var findings = ExposureAudit.probe(address, exposed: !isLoopbackHost(address.host), host: host)
        // Medium is the probe's verdict when every route was inconclusive (refused, timed out, redirected, failed).
        if let unchecked = findings.first(where: { $0.id == "exposure.probe-inconclusive" }), unchecked.severity == .medium {
            throw AuditError(description: "no vLLM found on this host, and the probes at \(url) learned nothing (\(unchecked.evidence.first ?? "no answer")): "
                             + "check the URL, or run `warden audit` on vLLM's own host")
        }
        findings += ExposureAudit.gatewayAdmin(deployment)
        findings.append(Finding("audit.probe-only", .info, "vLLM was not found among this host's processes or units: only its HTTP routes at \(url) were checked",
                                evidence: ["no process here runs `vllm serve` and no unit starts it (as root, processes of every user are seen)",
                                           "not checked: its unit's sandbox, secrets, command-line settings, advisories for its version, the GPU host"],
                                fix: "run `warden audit` as root on vLLM's own host for the rest"))
        return AuditReport(target: VLLMTarget(), findings: worstFirst(findings), probedOnly: url)
    }

    /// Most severe first; equally severe ones in the order the checks found them.
    static func worstFirst(_ findings: [Finding]) -> [Finding] {
        findings.enumerated().sorted { ($0.element.severity, $1.offset) > ($1.element.severity, $0.offset) }.map(\.element)
    }

    /// The API server's own socket, through loopback when it listens on every interface; none when it is not listening.
    static func defaultProbeAddress(_ target: VLLMTarget) -> (host: String, port: Int)? {
        guard let socket = target.apiSockets.first(where: { !$0.isLoopback }) ?? target.apiSockets.first else { return nil }
        let host = socket.address == "0.0.0.0" ? "127.0.0.1" : socket.address == "::" ? "::1" : socket.address
        return (host, socket.port)
    }

    /// `http://host:port[/…]` → host and port.
    static func parse(url: String) throws -> (host: String, port: Int) {
        guard url.hasPrefix("http://") else { throw AuditError(description: "--url \(url): only http:// URLs can be probed (vLLM serves plain HTTP)") }
        let authority = url.dropFirst(7).prefix { $0 != "/" }
        if let address = ListenAddress(String(authority)) { return (address.host, address.port) }
        // No port: port 80, for a host name, an IPv4 address or a bracketed IPv6 one (`http://[::1` is none of them).
        if authority.hasPrefix("["), authority.hasSuffix("]"), IPAddress(String(authority.dropFirst().dropLast())) != nil {
            return (String(authority.dropFirst().dropLast()), 80)
        }
        guard !authority.contains(":"), let address = ListenAddress("\(authority):80") else {
            throw AuditError(description: "--url \(url): expected http://HOST:PORT with a host name or an IP address ([…] for IPv6)")
        }
        return (address.host, address.port)
    }
}
