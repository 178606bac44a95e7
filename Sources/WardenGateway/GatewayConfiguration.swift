import WardenConfig

/// Everything the running gateway needs, derived from the deployment file (tests build one directly).
public struct GatewayConfiguration: Sendable {
    public var listen: ListenAddress?
    public var adminListen: ListenAddress?
    /// Listen on these instead (tests use port 0).
    public var listenHost: String
    public var listenPort: Int
    public var adminHost: String
    public var adminPort: Int
    public var upstreamHost: String { didSet { upstreamAuthority = Self.authority(upstreamHost, upstreamPort) } }
    public var upstreamPort: Int { didSet { upstreamAuthority = Self.authority(upstreamHost, upstreamPort) } }
    /// `host:port` for the upstream `Host` header (brackets around IPv6), built once rather than per request.
    private(set) var upstreamAuthority: String
    /// vLLM's own key (`VLLM_API_KEY`), injected upstream in place of the client's.
    public var upstreamKey: String?
    public var keyStorePath: String
    /// The allow-list and how its routes are metered (re-read on SIGHUP).
    public var routes: Routes
    public var servedModelName: String
    /// `vllm.max_model_len`: what a pooling request padded to the model's length costs per input (unset: refused).
    public var maxModelLength: Int?
    public var maxBodyBytes: Int
    public var maxHeaderBytes = 32 * 1024
    public var maxHeaderFields = 100
    /// A request (head and body) must arrive within this long; slow clients are cut off.
    public var requestReadTimeout: Duration = .seconds(30)
    /// A client that leaves its response unread this long is cut off (``ExchangeStateMachine`` charges the reservation).
    public var clientWriteTimeout: Duration = .seconds(60)
    /// Client headers vLLM receives (lower-case): ``HeaderPolicy/defaultForwarded`` plus `gateway.forward_headers`.
    public var forwardedHeaders = HeaderPolicy.defaultForwarded {
        didSet { forwardedHeaderNames = forwardedHeaders.map { $0.lowercased() } }
    }
    /// `forwardedHeaders`, lower-cased, as the per-request loop reads them.
    private(set) var forwardedHeaderNames = HeaderPolicy.defaultForwarded.map { $0.lowercased() }
    public var maxConnections = 8192
    public var maxConnectionsPerAddress = 256
    /// Addresses the per-address cap does not apply to: trusted proxies and loopback (behind a proxy, every
    /// client arrives from the proxy's address).
    public var perAddressCapExempt: [IPNetwork] = ["127.0.0.0/8", "::1/128"].compactMap(IPNetwork.init)
    /// Idle keep-alive connections are closed after this long.
    public var idleTimeout: Duration = .seconds(75)
    /// Longest silence allowed between two chunks from vLLM (covers TTFT under queueing).
    public var upstreamReadTimeout: Duration = .seconds(600)
    public var upstreamConnectTimeout: Duration = .seconds(3)
    public var drainTimeout: Duration
    public var trustedProxies: [IPNetwork]
    /// Where the deployment file lives, re-read on SIGHUP.
    public var deploymentPath: String?
    /// Request, token and concurrency limits, quotas and the ban policy.
    var limits: GatewayLimits.Defaults
    /// How long the usage ledger keeps hours and days.
    public var usage: Deployment.UsagePolicy
    /// Seconds since the epoch for quotas and the ledger; tests inject their own.
    var wallClock: (@Sendable () -> Int64)?

    public init(deployment: Deployment, deploymentPath: String?, upstreamKey: String?) throws {
        let gateway = deployment.gateway
        guard gateway.tls == nil else {
            throw GatewaySetupError("gateway.tls is set, but this version does not terminate TLS itself; remove it and terminate TLS in Caddy or nginx in front (listed in gateway.trusted_proxies)")
        }
        guard let listen = ListenAddress(gateway.listen), let admin = ListenAddress(gateway.adminListen) else {
            throw GatewaySetupError("gateway.listen and gateway.admin_listen must be host:port")
        }
        guard let upstream = UpstreamAddress(gateway.upstream) else {
            throw GatewaySetupError("gateway.upstream \(gateway.upstream) must be http://host:port (https upstreams are not supported yet)")
        }
        self.listenHost = listen.host
        self.listenPort = listen.port
        self.adminHost = admin.host
        self.adminPort = admin.port
        self.upstreamHost = upstream.host
        self.upstreamPort = upstream.port
        self.upstreamAuthority = Self.authority(upstream.host, upstream.port)
        self.upstreamKey = upstreamKey.flatMap { $0.isEmpty ? nil : $0 }
        // The key goes into every upstream request head as is, and outbound heads are not re-validated per request.
        if let key = self.upstreamKey, !key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
            throw GatewaySetupError("VLLM_API_KEY holds a space, a control character (a trailing newline?) or a non-ASCII byte; set it to exactly the key vLLM was started with (--api-key)")
        }
        self.keyStorePath = gateway.keyStore
        self.routes = Routes(gateway)
        self.servedModelName = deployment.vllm.servedModelName
        self.maxModelLength = deployment.vllm.maxModelLen
        self.maxBodyBytes = gateway.maxBodyBytes
        self.drainTimeout = .seconds(gateway.drainTimeout)
        self.trustedProxies = gateway.trustedProxies.compactMap(IPNetwork.init)
        self.clientWriteTimeout = .seconds(gateway.writeTimeout)
        self.maxConnections = gateway.maxConnections
        self.forwardedHeaders = HeaderPolicy.defaultForwarded.union(gateway.forwardHeaders)
        self.forwardedHeaderNames = forwardedHeaders.map { $0.lowercased() }
        self.maxConnectionsPerAddress = gateway.maxConnectionsPerAddress
        self.perAddressCapExempt += self.trustedProxies
        self.deploymentPath = deploymentPath
        self.limits = GatewayLimits.Defaults(gateway)
        self.usage = gateway.usage
    }

    /// The route part of the deployment file.
    public struct Routes: Sendable {
        public var allowedEndpoints: [String]
        public var routeCosts: [String: Int]
        var metering: MeteringSettings

        public init(_ gateway: Deployment.Gateway) {
            allowedEndpoints = gateway.allowedEndpoints
            routeCosts = gateway.routeCosts
            metering = MeteringSettings(audioTokensPerSecond: gateway.audioTokensPerSecond, allowBackgroundResponses: gateway.allowBackgroundResponses)
        }
    }

    private static func authority(_ host: String, _ port: Int) -> String {
        host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
