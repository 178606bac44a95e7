/// A published vLLM security advisory, as shipped with Warden.
public struct Advisory: Sendable {
    public var id: String
    public var cve: String
    public var severity: Severity
    /// First affected version; `nil` when every earlier version is affected.
    public var introduced: String?
    /// First version with the fix.
    public var fixed: String
    public var summary: String
    /// The setting that makes it reachable.
    public var reachability: Reachability
    /// The advisory itself.
    public var source: String

    /// `introduced ≤ version < fixed`.
    public func affects(_ version: PackageVersion) -> Bool {
        guard let fixedVersion = PackageVersion(fixed), version < fixedVersion else { return false }
        return introduced.flatMap(PackageVersion.init).map { $0 <= version } ?? true
    }

    public var range: String { (introduced.map { ">=\($0), " } ?? "") + "<\(fixed)" }
}

/// What must be true of a deployment for an advisory to matter to it.
public enum Reachability: Sendable {
    /// Any client that reaches the API (the text says which part).
    case anyClient(String)
    /// Clients reach vLLM directly, so its own `--api-key` check is the only lock.
    case directAPIKey
    /// A `--kv-transfer-config` naming this connector.
    case kvConnector(String)
    /// Several hosts (`--nnodes` > 1, or a multi-node `--distributed-executor-backend`).
    case multiNode
    /// A model whose `config.json` has `auto_map`.
    case autoMap
    /// Python started with `-O` or `PYTHONOPTIMIZE`.
    case pythonOptimize
    /// Loading a model from a source that is not fully trusted.
    case untrustedModel

    public var requirement: String {
        switch self {
        case .anyClient(let what): what
        case .directAPIKey: "clients reach vLLM directly and rely on its --api-key"
        case .kvConnector(let name): "--kv-transfer-config with \(name)"
        case .multiNode: "a multi-node deployment"
        case .autoMap: "a model whose config.json has auto_map"
        case .pythonOptimize: "python -O or PYTHONOPTIMIZE"
        case .untrustedModel: "loading a model that is not fully trusted"
        }
    }
}

/// The advisories of github.com/vllm-project/vllm/security that `warden audit` knows. Ranges as published in each
/// advisory (checked against the OSV records of the same ids); every entry links its source.
public enum AdvisoryTable {
    /// When the table was last compared with the published advisories.
    public static let date = "2026-11-27"

    public static let entries: [Advisory] = [
        Advisory(id: "GHSA-hj4w-hm2g-p6w5", cve: "CVE-2025-32444", severity: .critical, introduced: "0.6.5", fixed: "0.8.5",
                 summary: "Mooncake KV transfer deserialises pickle from unsecured ZeroMQ sockets on all interfaces: remote code execution",
                 reachability: .kvConnector("MooncakeConnector"), source: "https://github.com/vllm-project/vllm/security/advisories/GHSA-hj4w-hm2g-p6w5"),
        Advisory(id: "GHSA-hjq4-87xh-g4fv", cve: "CVE-2025-47277", severity: .critical, introduced: "0.6.5", fixed: "0.8.5",
                 summary: "the PyNcclPipe KV-transfer service deserialises pickle from the network: remote code execution",
                 reachability: .kvConnector("PyNcclConnector"), source: "https://github.com/vllm-project/vllm/security/advisories/GHSA-hjq4-87xh-g4fv"),
        Advisory(id: "GHSA-9f8f-2vmf-885j", cve: "CVE-2025-30202", severity: .high, introduced: "0.5.2", fixed: "0.8.5",
                 summary: "multi-node: a ZeroMQ XPUB socket listens on all interfaces, leaking engine data and allowing denial of service",
                 reachability: .multiNode, source: "https://github.com/vllm-project/vllm/security/advisories/GHSA-9f8f-2vmf-885j"),
        Advisory(id: "GHSA-9pcc-gvx5-r5wm", cve: "CVE-2025-30165", severity: .high, introduced: "0.5.2", fixed: "0.10.0",
                 summary: "multi-node V0 engine: secondary hosts deserialise pickle from ZeroMQ (remote code execution); not fixed in V0, gone with V1 (fixed version as OSV records it)",
                 reachability: .multiNode, source: "https://github.com/vllm-project/vllm/security/advisories/GHSA-9pcc-gvx5-r5wm"),
        Advisory(id: "GHSA-wr9h-g72x-mwhm", cve: "CVE-2025-59425", severity: .high, introduced: nil, fixed: "0.11.0",
                 summary: "the --api-key comparison is not constant-time: the key can be recovered by timing",
                 reachability: .directAPIKey, source: "https://github.com/vllm-project/vllm/security/advisories/GHSA-wr9h-g72x-mwhm"),
        Advisory(id: "GHSA-mrw7-hf4f-83pf", cve: "CVE-2025-62164", severity: .high, introduced: "0.10.2", fixed: "0.11.1",
                 summary: "prompt embeddings sent to the Completions API are loaded with torch.load unchecked: memory corruption, denial of service, possibly code execution",
                 reachability: .anyClient("any client of the Completions API"), source: "https://github.com/vllm-project/vllm/security/advisories/GHSA-mrw7-hf4f-83pf"),
        Advisory(id: "GHSA-2pc9-4j83-qjmr", cve: "CVE-2026-22807", severity: .high, introduced: "0.10.1", fixed: "0.14.0",
                 summary: "auto_map modules of a model's config are imported at start even without --trust-remote-code: code execution",
                 reachability: .autoMap, source: "https://github.com/vllm-project/vllm/security/advisories/GHSA-2pc9-4j83-qjmr"),
        Advisory(id: "GHSA-7972-pg2x-xr59", cve: "CVE-2026-27893", severity: .high, introduced: "0.10.1", fixed: "0.18.0",
                 summary: "some model implementations hard-code trust_remote_code=True, running model code despite the operator's opt-out",
                 reachability: .untrustedModel, source: "https://github.com/vllm-project/vllm/security/advisories/GHSA-7972-pg2x-xr59"),
        Advisory(id: "GHSA-94f4-hr76-p5j6", cve: "CVE-2026-48746", severity: .critical, introduced: "0.3.0", fixed: "0.22.0",
                 summary: "a crafted Host header bypasses the --api-key check (deployments behind a proxy that sets Host are not affected)",
                 reachability: .directAPIKey, source: "https://github.com/vllm-project/vllm/security/advisories/GHSA-94f4-hr76-p5j6"),
        Advisory(id: "GHSA-q8gq-377p-jq3r", cve: "CVE-2026-41523", severity: .high, introduced: nil, fixed: "0.22.0",
                 summary: "a security check in activation-function loading is an assert, which python -O removes: code execution",
                 reachability: .pythonOptimize, source: "https://github.com/vllm-project/vllm/security/advisories/GHSA-q8gq-377p-jq3r"),
    ]
}
