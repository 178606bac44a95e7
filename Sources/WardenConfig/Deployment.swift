/// The whole box, as described by one deployment file (`/etc/warden/warden.yaml` by default).
///
/// Every `warden` subcommand reads this. Only `vllm.model` is required; every other field has the default
/// documented next to it and printed by `warden config example`.
public struct Deployment: Sendable, Equatable, Codable {
    public var vllm: VLLM
    public var paths: Paths
    public var gateway: Gateway
    public var systemd: Systemd

    public init(vllm: VLLM, paths: Paths = Paths(), gateway: Gateway? = nil, systemd: Systemd = Systemd()) {
        self.vllm = vllm
        self.paths = paths
        self.gateway = gateway ?? Gateway(upstream: vllm.defaultUpstream)
        self.systemd = systemd
    }
}

extension Deployment {
    /// How vLLM itself is run: the arguments of `vllm serve` and the service account.
    public struct VLLM: Sendable, Equatable, Codable {
        /// Local directory or Hugging Face name of the model.
        public var model: String
        /// Name clients use in `model`; defaults to the last path component of `model`.
        public var servedModelName: String
        public var host: String = "127.0.0.1"
        public var port: Int = 8000
        public var gpuMemoryUtilization: Double = 0.9
        public var tensorParallelSize: Int = 1
        public var pipelineParallelSize: Int = 1
        public var maxModelLen: Int?
        /// Further `vllm serve` arguments, passed verbatim.
        public var extraArgs: [String] = []
        public var venv: String = "/opt/vllm/.venv"
        public var user: String = "vllm"
        public var group: String = "vllm"
        /// Seconds vLLM may spend finishing in-flight requests on SIGTERM (`--shutdown-timeout`).
        public var shutdownTimeout: Int = 30
        /// Extra environment variables for the vLLM process.
        public var environment: [String: String] = [:]
        /// Environment file holding `VLLM_API_KEY`; never put the key on the command line.
        public var envFile: String = "/etc/warden/vllm.env"

        public init(model: String, servedModelName: String? = nil) {
            self.model = model
            self.servedModelName = servedModelName ?? VLLM.defaultServedName(for: model)
        }

        static func defaultServedName(for model: String) -> String {
            let trimmed = model.hasSuffix("/") ? String(model.dropLast()) : model
            return trimmed.split(separator: "/").last.map(String.init) ?? model
        }

        enum CodingKeys: String, CodingKey {
            case model, host, port, venv, user, group, environment
            case servedModelName = "served_model_name"
            case gpuMemoryUtilization = "gpu_memory_utilization"
            case tensorParallelSize = "tensor_parallel_size"
            case pipelineParallelSize = "pipeline_parallel_size"
            case maxModelLen = "max_model_len"
            case extraArgs = "extra_args"
            case shutdownTimeout = "shutdown_timeout"
            case envFile = "env_file"
        }

        /// Where vLLM is reached locally: `http://host:port`, a wildcard host replaced by loopback.
        public var defaultUpstream: String {
            let upstreamHost = (host == "0.0.0.0" || host.isEmpty) ? "127.0.0.1" : (host == "::" ? "[::1]" : host)
            let bracketed = upstreamHost.contains(":") && !upstreamHost.hasPrefix("[") ? "[\(upstreamHost)]" : upstreamHost
            return "http://\(bracketed):\(port)"
        }
    }

    /// Directories of the stack; the defaults match systemd's `StateDirectory=vllm` and `CacheDirectory=vllm`.
    public struct Paths: Sendable, Equatable, Codable {
        public var models: String = "/srv/models"
        public var state: String = "/var/lib/vllm"
        public var cache: String = "/var/cache/vllm"
        public init() {}
    }

    /// The authenticating gateway in front of vLLM.
    public struct Gateway: Sendable, Equatable, Codable {
        public var listen: String = "127.0.0.1:8080"
        public var upstream: String
        public var keyStore: String = "/var/lib/warden/keys.sqlite"
        /// `METHOD /path` entries; everything else is answered 404 by the gateway.
        public var allowedEndpoints: [String] = Gateway.defaultAllowedEndpoints
        public var limits: Limits = Limits()
        public var bans: BanPolicy = BanPolicy()
        public var usage: UsagePolicy = UsagePolicy()
        /// Seconds in-flight requests may run on after SIGTERM before streams are ended.
        public var drainTimeout: Int = 30
        public var adminListen: String = "127.0.0.1:9091"
        public var maxBodyBytes: Int = 4 * 1024 * 1024
        public var tls: TLS?
        /// Proxies (addresses or CIDR networks) whose `X-Forwarded-For` is believed.
        public var trustedProxies: [String] = []
        /// Client headers vLLM receives besides `content-type`, `accept`, `user-agent`, `traceparent` and `tracestate`.
        public var forwardHeaders: [String] = []
        /// Client connections open at once; more are closed as soon as they are accepted.
        public var maxConnections: Int = 8192
        /// Client connections open at once from one address (an IPv6 /64 counts as one).
        public var maxConnectionsPerAddress: Int = 256
        /// Seconds a client may leave its stream unread before the request is ended (and charged its reservation).
        public var writeTimeout: Int = 60
        /// Tokens per request for allowed routes Warden has no meter for (`"POST /invocations": 4000`): charged
        /// the request's usage when its response carries an OpenAI `usage`, else this.
        public var routeCosts: [String: Int] = [:]
        /// Tokens one second of audio costs on `/v1/audio/*`; those routes cannot be allowed without it.
        public var audioTokensPerSecond: Int?
        /// `POST /v1/responses` with `background: true` (vLLM generates after the POST returns, out of the
        /// gateway's sight): refused unless true, and then charged its whole reservation.
        public var allowBackgroundResponses = false

        /// Headers the gateway sets itself or that change framing or metering: never taken from a client.
        public static let reservedHeaders: Set<String> = ["authorization", "host", "content-length", "transfer-encoding", "connection",
                                                           "x-request-id", "x-forwarded-for", "accept-encoding", "expect", "upgrade", "te",
                                                           "keep-alive", "proxy-authorization", "cookie"]

        public static let defaultAllowedEndpoints = [
            "POST /v1/chat/completions", "POST /v1/completions", "POST /v1/embeddings", "GET /v1/models",
        ]

        public init(upstream: String) { self.upstream = upstream }

        enum CodingKeys: String, CodingKey {
            case listen, upstream, limits, bans, tls, usage
            case keyStore = "key_store"
            case allowedEndpoints = "allowed_endpoints"
            case drainTimeout = "drain_timeout"
            case adminListen = "admin_listen"
            case maxBodyBytes = "max_body_bytes"
            case trustedProxies = "trusted_proxies"
            case forwardHeaders = "forward_headers"
            case maxConnections = "max_connections"
            case maxConnectionsPerAddress = "max_connections_per_address"
            case writeTimeout = "write_timeout"
            case routeCosts = "route_costs"
            case audioTokensPerSecond = "audio_tokens_per_second"
            case allowBackgroundResponses = "allow_background_responses"
        }
    }

    /// Default per-key limits; a key may carry its own.
    public struct Limits: Sendable, Equatable, Codable {
        /// Off turns every limit off (keys, allow-list and bans still apply); for benchmarks and trusted setups.
        public var enabled: Bool = true
        public var requestsPerMinute: Int = 60
        /// Requests a key may send at once above its steady rate.
        public var burst: Int = 10
        public var tokensPerMinute: Int = 100_000
        /// Requests one key may have in flight.
        public var concurrency: Int = 8
        /// Requests all keys together may have in flight.
        public var globalConcurrency: Int = 256
        /// Requests one model may have in flight (all keys together); unset means only the global limit applies.
        public var modelConcurrency: Int?
        /// Seconds after which a request's concurrency lease is reclaimed even if its end was never seen.
        public var leaseTimeout: Int = 3600
        /// Completion tokens reserved when a request names no `max_tokens`.
        public var defaultMaxTokens: Int = 1024
        /// Tokens a key may be charged per calendar day; unset: no daily quota.
        public var tokensPerDay: Int?
        /// Tokens a key may be charged per calendar month; unset: no monthly quota.
        public var tokensPerMonth: Int?
        /// Where quota days and months begin: `UTC` or a fixed whole-hour offset (`+02:00`, `UTC-5`; no daylight saving).
        public var quotaTimeZone: String = "UTC"
        public init() {}

        /// What a limit may be, in `gateway.limits` and on a key (`warden keys create/update`, and a key store read
        /// by the gateway): wider than any deployment needs, narrow enough that the arithmetic on them — a rate's
        /// interval times its burst, token sums and quotas — cannot overflow.
        public enum Range {
            public static let requestsPerMinute = 1...10_000_000
            public static let burst = 1...1_000_000
            public static let tokensPerMinute = 1...1_000_000_000
            public static let concurrency = 1...100_000
            public static let quota = 1...(1 << 48)
        }

        enum CodingKeys: String, CodingKey {
            case enabled, burst, concurrency
            case requestsPerMinute = "requests_per_minute"
            case tokensPerMinute = "tokens_per_minute"
            case globalConcurrency = "global_concurrency"
            case modelConcurrency = "model_concurrency"
            case leaseTimeout = "lease_timeout"
            case defaultMaxTokens = "default_max_tokens"
            case tokensPerDay = "tokens_per_day"
            case tokensPerMonth = "tokens_per_month"
            case quotaTimeZone = "quota_time_zone"
        }
    }

    /// How long the usage ledger keeps what each key used.
    public struct UsagePolicy: Sendable, Equatable, Codable {
        /// Days of usage kept; older rows are deleted.
        public var retentionDays: Int = 400
        /// Days kept per hour; older hours are compacted into days.
        public var hourlyDays: Int = 30
        public init() {}

        enum CodingKeys: String, CodingKey {
            case retentionDays = "retention_days"
            case hourlyDays = "hourly_days"
        }
    }

    /// fail2ban-style banning of addresses that keep presenting bad keys.
    public struct BanPolicy: Sendable, Equatable, Codable {
        public var enabled: Bool = true
        public var maxFailures: Int = 5
        /// Seconds in which `max_failures` failures lead to a ban.
        public var findTime: Int = 600
        /// Seconds of the first ban; later bans multiply by `increment_factor` up to `max_ban_time`.
        public var banTime: Int = 600
        public var incrementFactor: Double = 2
        public var maxBanTime: Int = 7 * 86_400
        /// Networks never banned (CIDR or single addresses).
        public var ignoreNetworks: [String] = ["127.0.0.0/8", "::1/128"]
        public init() {}

        enum CodingKeys: String, CodingKey {
            case enabled
            case maxFailures = "max_failures"
            case findTime = "find_time"
            case banTime = "ban_time"
            case incrementFactor = "increment_factor"
            case maxBanTime = "max_ban_time"
            case ignoreNetworks = "ignore_networks"
        }
    }

    /// TLS for the gateway listener; absent means plain HTTP (usually behind Caddy or nginx).
    public struct TLS: Sendable, Equatable, Codable {
        public var certificate: String
        public var privateKey: String
        public init(certificate: String, privateKey: String) {
            self.certificate = certificate
            self.privateKey = privateKey
        }

        enum CodingKeys: String, CodingKey {
            case certificate
            case privateKey = "private_key"
        }
    }

    /// Choices for the rendered systemd units.
    public struct Systemd: Sendable, Equatable, Codable {
        /// `MemoryDenyWriteExecute=yes`; turn off only for features that need W+X pages (numba n-gram speculation).
        public var memoryDenyWriteExecute: Bool = true
        /// Addresses or networks vLLM may talk to besides localhost (`IPAddressAllow=`).
        public var ipAddressAllow: [String] = []
        public init() {}

        enum CodingKeys: String, CodingKey {
            case memoryDenyWriteExecute = "memory_deny_write_execute"
            case ipAddressAllow = "ip_address_allow"
        }
    }
}
