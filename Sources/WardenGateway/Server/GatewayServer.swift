import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import UnixSignals
import WardenConfig
import WardenNIOSupport
#if canImport(Glibc)
import Glibc
#endif

/// `warden gateway`: the public listener, the admin listener, key and health watchers, drain and reload.
public final class GatewayServer: Service, Sendable {
    let core: GatewayCore
    private let group: any EventLoopGroup
    private let listeners = NIOLockedValueBox<(servers: [any Channel], admin: (any Channel)?)>(([], nil))
    private let connections = ConnectionRegistry()
    private let limiter: ConnectionLimiter
    private let notifier: ServiceManagerNotifier
    /// SIGHUP, trapped in ``start()`` before the listeners open and iterated in ``run()``.
    private let hangups = NIOLockedValueBox<UnixSignalsSequence?>(nil)
    /// The open key store, the `PRAGMA data_version` last seen on it (it changes when another process commits),
    /// the ban-table generation last persisted and the hour the ledger was last compacted.
    private let keyStore: NIOLockedValueBox<StoreState>

    private struct StoreState {
        var store: KeyStore
        var version: Int64
        var bansGeneration = 0
        var compactedHour: Int64 = 0
    }

    /// Opens the key store and builds the first policy; fails with an actionable message when either is unusable.
    /// `notifier` tells systemd when the gateway is ready, reloaded and draining (the command passes `$NOTIFY_SOCKET`'s).
    public init(configuration: GatewayConfiguration, accessLog: any AccessLogSink = BufferedStandardOutputSink(),
                logger: Logger = Logger(label: "warden-gateway"), group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                notifier: ServiceManagerNotifier = .none) throws {
        self.notifier = notifier
        let store = try KeyStore(path: configuration.keyStorePath, create: false)
        keyStore = NIOLockedValueBox(StoreState(store: store, version: try store.dataVersion()))
        let policy = GatewayPolicy(keys: try store.loadTable(), gateway: configuration.routes)
        core = GatewayCore(configuration: configuration, state: GatewayState(policy: policy), metrics: GatewayMetrics(),
                           accessLog: accessLog, logger: logger)
        self.group = group
        limiter = ConnectionLimiter(maxTotal: configuration.maxConnections, maxPerAddress: configuration.maxConnectionsPerAddress,
                                    exempt: configuration.perAddressCapExempt)
        // Bans and quota counts carry over from the last run, as far as the ledger's last write.
        core.limits.restoreBans(try store.loadBans(now: core.limits.epoch))
        try seedQuotas(from: store)
    }

    /// Binds both listeners; returns the bound ports (useful with port 0). SIGHUP is trapped first: a reload sent
    /// as soon as the unit is up must never find the default action (terminate) in place.
    @discardableResult
    public func start() async throws -> (port: Int, adminPort: Int) {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        self.hangups.withLockedValue { $0 = hangups }
        let configuration = core.configuration
        let core = self.core
        raiseDescriptorLimit()
        let limiter = self.limiter
        let admit: @Sendable (any Channel) -> Bool = { channel in
            let address = IPAddress(peer: channel.remoteAddress)
            if let refusal = limiter.open(from: address) {
                core.metrics.countRejection("connection_limit_\(refusal.rawValue)")
                return false
            }
            channel.closeFuture.whenComplete { _ in limiter.close(from: address) }
            return true
        }
        let servers = try await Self.bind("gateway.listen", configuration.listenHost, configuration.listenPort) {
            try await PublicListeners.bind(host: configuration.listenHost, port: configuration.listenPort, group: group) { loop in
                connections.httpServerBootstrap(group: loop, admit: admit) { pipeline in
                    // One handler: it parses requests from the bytes (``ClientRequestParser``) and frames its
                    // responses itself. Heads are not re-validated on the way out: vLLM's fields passed the strict
                    // upstream parser, and every value the gateway adds is a number, a hex id, a checked client id
                    // or fixed text.
                    try pipeline.addHandler(GatewayHTTPHandler(core: core))
                }
            }
        }
        let adminConnections = ConnectionLimiter(maxTotal: AdminHandler.maxConnections, maxPerAddress: AdminHandler.maxConnections, exempt: [])
        let admin = try await Self.bind("gateway.admin_listen", configuration.adminHost, configuration.adminPort) {
            try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(core: core, connections: adminConnections))
                }
            }
            .bind(host: configuration.adminHost, port: configuration.adminPort).get()
        }
        listeners.withLockedValue { $0 = (servers, admin) }
        await refreshUpstreamHealth()
        let ports = (servers.first?.localAddress?.port ?? configuration.listenPort, admin.localAddress?.port ?? configuration.adminPort)
        core.logger.info("gateway listening", metadata: ["listen": "\(configuration.listenHost):\(ports.0)", "admin": "\(configuration.adminHost):\(ports.1)",
                                                         "upstream": "\(configuration.upstreamAuthority)", "keys": "\(core.state.policy.keys.count)"])
        tellServiceManager("READY=1\nSTATUS=listening on \(configuration.listenHost):\(ports.0), admin on \(configuration.adminHost):\(ports.1)")
        return ports
    }

    /// Binds, turning NIO's bind error into one that names the address and the key that sets it.
    private static func bind<Bound>(_ key: String, _ host: String, _ port: Int, _ open: () async throws -> Bound) async throws -> Bound {
        do {
            return try await open()
        } catch let error as IOError {
            let address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            let reason = error.errnoCode == EADDRINUSE ? "the address is in use (`ss -ltnp 'sport = :\(port)'` shows by what)"
                : error.errnoCode == EACCES ? "permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)"
                : String(cString: strerror(error.errnoCode))
            throw GatewaySetupError("cannot listen on \(address) (\(key)): \(reason); stop the other process or change \(key)")
        }
    }

    /// Raises the soft open-file limit to the hard one (as nginx's `worker_rlimit_nofile`), and warns when the
    /// hard limit cannot hold `max_connections` proxied requests (two descriptors each).
    private func raiseDescriptorLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let needed = rlim_t(core.configuration.maxConnections * 2 + 64)
        if limit.rlim_cur < needed {
            core.logger.warning("open-file limit too low for gateway.max_connections: connections beyond it fail",
                                metadata: ["limit": "\(limit.rlim_cur)", "needed": "\(needed)",
                                           "fix": "LimitNOFILE=65535 in the unit (warden unit render sets it), or lower gateway.max_connections"])
        }
    }

    /// Runs until graceful shutdown: watches the key store and vLLM's health, reloads on SIGHUP, then drains.
    public func run() async throws {
        let watchdog = startWatchdog()
        defer { watchdog?.cancel() }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { tasks in
                tasks.addTask {
                    await self.watch(every: .seconds(1)) {
                        await Self.offTheConcurrencyPool {
                            do { try self.reloadKeysIfChanged() } catch {
                                self.core.logger.error("cannot read the key store; keeping the keys loaded before", metadata: ["error": "\(error)"])
                            }
                        }
                    }
                }
                tasks.addTask { await self.watch(every: .seconds(1)) { await Self.offTheConcurrencyPool { self.persistUsage() } } }
                tasks.addTask { await self.watch(every: .seconds(2)) { await self.refreshUpstreamHealth() } }
                tasks.addTask {
                    await self.watch(every: .seconds(10)) {
                        let reclaimed = self.core.limits.expireLeases()
                        if reclaimed > 0 { self.core.logger.warning("reclaimed expired concurrency leases", metadata: ["count": "\(reclaimed)"]) }
                    }
                }
                tasks.addTask {
                    for await _ in await self.hangupSignals().cancelOnGracefulShutdown() {
                        await Self.offTheConcurrencyPool {
                            do {
                                try self.reload()
                            } catch {
                                self.core.logger.error("reload failed; keeping the running configuration", metadata: ["error": "\(error)"])
                                self.tellServiceManager("STATUS=reload failed, running the configuration loaded before: " + "\(error)".replacing("\n", with: " "))
                            }
                        }
                    }
                }
                await self.waitForShutdown()
                tasks.cancelAll()
            }
        } onGracefulShutdown: {
            self.beginDrain()
        }
        await drain()
    }

    /// Pings systemd's watchdog every quarter of `WatchdogSec=` while every event loop still runs tasks
    /// (``EventLoopHeartbeat``), so one late answer is not yet fatal. The timer runs on an event loop, not in the Swift
    /// concurrency pool, which blocking key-store work can hold up; and it runs through the drain, until ``run()``
    /// returns: systemd re-arms its timer on any ping, and one sent as the drain began must not be the last.
    private func startWatchdog() -> RepeatedTask? {
        guard let timeout = notifier.watchdogTimeout else { return nil }
        let heartbeat = EventLoopHeartbeat(loops: Array(group.makeIterator()))
        let interval = TimeAmount(timeout / 4)
        return group.next().scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            let stuck = heartbeat.tick()
            if stuck.isEmpty {
                self.tellServiceManager("WATCHDOG=1", waitingForRoom: false)
            } else {
                self.core.logger.error("event loops have not run a task for \(timeout / 4): withholding the watchdog ping; systemd restarts the gateway after WatchdogSec= without one",
                                       metadata: ["loops": "\(stuck)"])
            }
        }
    }

    /// Runs key-store work (SQLite, which may wait up to its busy timeout for another writer) on NIO's blocking-I/O
    /// pool: on the Swift concurrency pool, two such waits would hold every thread of a 2-core host.
    private static func offTheConcurrencyPool(_ work: @escaping @Sendable () -> Void) async {
        do {
            try await NIOThreadPool.singleton.runIfActive(work)
        } catch {
            work()  // cancelled while queued (the gateway is stopping): run here rather than skip a write
        }
    }

    /// The SIGHUP sequence ``start()`` trapped (tests that run without start get a fresh one).
    private func hangupSignals() async -> UnixSignalsSequence {
        if let trapped = hangups.withLockedValue({ $0 }) { return trapped }
        return await UnixSignalsSequence(trapping: .sighup)
    }

    private func waitForShutdown() async {
        try? await gracefulShutdown()
    }

    private func watch(every interval: Duration, _ work: @Sendable () async -> Void) async {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: interval)
            await work()
        }
    }

    /// Readiness turns 503 and the public listener stops accepting at once.
    public func beginDrain() {
        guard !core.state.draining.exchange(true, ordering: .relaxed) else { return }
        core.logger.info("draining", metadata: ["in_flight": "\(core.state.inFlight.load(ordering: .relaxed))"])
        tellServiceManager("STOPPING=1\nSTATUS=draining \(core.state.inFlight.load(ordering: .relaxed)) in-flight requests")
        for server in listeners.withLockedValue({ $0.servers }) { server.close(promise: nil) }
    }

    /// Lets in-flight requests finish up to the drain timeout, ends the rest (streams get a terminal error event),
    /// then closes every connection and the admin listener.
    public func drain() async {
        beginDrain()
        let deadline = ContinuousClock.now + core.configuration.drainTimeout
        while core.state.inFlight.load(ordering: .relaxed) > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if core.state.inFlight.load(ordering: .relaxed) > 0 {
            core.logger.warning("drain timeout reached; ending remaining requests", metadata: ["in_flight": "\(core.state.inFlight.load(ordering: .relaxed))"])
            core.state.terminateAll()
            // Each exchange ends on its own event loop, then writes its last bytes (a stream's error event) and closes
            // its connection once they are out. Given at least 100 ms for those writes, and up to a second for every
            // exchange to end — a fixed 100 ms was outrun by a loaded machine, and the connections still open after
            // that are closed below.
            let terminated = ContinuousClock.now
            while ContinuousClock.now < terminated + .seconds(1),
                  core.state.inFlight.load(ordering: .relaxed) > 0 || ContinuousClock.now < terminated + .milliseconds(100) {
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        await connections.closeAll()
        persistUsage()
        try? await listeners.withLockedValue { $0.admin }?.close()
        (core.accessLog as? BufferedStandardOutputSink)?.flush()
    }

    /// SIGHUP: re-reads the deployment file (allow-list) and the key store without touching connections.
    public func reload() throws {
        var routes = core.configuration.routes
        if let path = core.configuration.deploymentPath {
            let gateway = try Deployment.load(path: path).gateway
            routes = GatewayConfiguration.Routes(gateway)
            core.limits.update(GatewayLimits.Defaults(gateway))
        }
        persistUsage()
        // Reopened, so a key store restored from a backup (a new file) is picked up too.
        let store = try KeyStore(path: core.configuration.keyStorePath, create: false)
        let version = try store.dataVersion()
        core.state.replacePolicy(GatewayPolicy(keys: try store.loadTable(), gateway: routes))
        try seedQuotas(from: store)
        keyStore.withLockedValue { $0 = StoreState(store: store, version: version) }
        core.logger.info("reloaded", metadata: ["keys": "\(core.state.policy.keys.count)", "endpoints": "\(routes.allowedEndpoints.count)"])
        tellServiceManager("STATUS=reloaded: \(core.state.policy.keys.count) keys, \(routes.allowedEndpoints.count) endpoints")
    }

    /// Sends to systemd (``ServiceManagerNotifier``); a failure is logged, since a lost `READY=1` shows only as a
    /// start that times out.
    private func tellServiceManager(_ assignments: String, waitingForRoom: Bool = true) {
        do {
            try notifier.notify(assignments, waitingForRoom: waitingForRoom)
        } catch {
            core.logger.warning("cannot notify systemd", metadata: ["error": "\(error)", "message": "\(assignments.prefix { $0 != "\n" })"])
        }
    }

    /// Reloads the keys when `warden keys` changed the store (checked every second).
    func reloadKeysIfChanged() throws {
        let table = try keyStore.withLockedValue { current -> KeyTable? in
            let version = try current.store.dataVersion()
            guard version != current.version else { return nil }
            // The version is taken only once the table is read, so a failed read is retried on the next check.
            let table = try current.store.loadTable()
            current.version = version
            return table
        }
        guard let table else { return }
        core.state.replacePolicy(core.state.policy.replacingKeys(table))
        core.logger.info("key store changed; keys reloaded", metadata: ["keys": "\(table.count)"])
    }

    /// Quota counts from the ledger: what each key was charged in the current day and month.
    private func seedQuotas(from store: KeyStore) throws {
        let starts = core.limits.quotaPeriodStarts
        core.limits.seedQuotas(day: try store.chargedTokens(since: starts.day), month: try store.chargedTokens(since: starts.month))
    }

    /// Every second and after draining: writes the ledger's counts in one transaction, the bans when they changed,
    /// compacts the ledger once an hour, and refreshes the ban and quota gauges. A failed write keeps the counts for
    /// the next try.
    func persistUsage() {
        let cells = core.ledger.take()
        let epoch = core.limits.epoch
        let usage = core.configuration.usage
        let monthStart = core.limits.quotaPeriodStarts.month
        keyStore.withLockedValue { current in
            do {
                try current.store.addUsage(cells)
            } catch {
                core.ledger.putBack(cells)
                core.metrics.ledgerWriteFailures.increment()
                core.logger.error("cannot write the usage ledger; keeping the counts in memory", metadata: ["error": "\(error)"])
            }
            if let (generation, bans) = core.limits.bansToStore(after: current.bansGeneration) {
                do {
                    try current.store.saveBans(bans)
                    current.bansGeneration = generation
                } catch {
                    core.logger.error("cannot persist the ban table", metadata: ["error": "\(error)"])
                }
            }
            let hour = epoch - epoch % 3600
            if hour != current.compactedHour {
                // The current quota month stays hourly whatever hourly_days says: a restart sums it from its first hour.
                let hourlyBefore = min(epoch - Int64(usage.hourlyDays) * 86_400, monthStart)
                do {
                    try current.store.compactUsage(hourlyBefore: hourlyBefore, deleteBefore: epoch - Int64(usage.retentionDays) * 86_400)
                    current.compactedHour = hour
                } catch {
                    core.logger.error("cannot compact the usage ledger", metadata: ["error": "\(error)"])
                }
            }
        }
        core.metrics.bansActive.set(Double(core.limits.activeBanCount()))
        for use in core.limits.quotaUse(core.state.policy.keys.all) {
            core.metrics.setQuotaUsed(key: use.key, period: use.period.rawValue, ratio: Double(use.used) / Double(max(1, use.limit)))
        }
    }

    func refreshUpstreamHealth() async {
        let configuration = core.configuration
        let problem = await UpstreamHealth.probe(host: configuration.upstreamHost, port: configuration.upstreamPort,
                                                 authority: configuration.upstreamAuthority, upstreamKey: configuration.upstreamKey,
                                                 timeout: .seconds(2), group: group)
        let (previous, verdict) = core.state.recordUpstreamProbe(problem)
        core.metrics.upstreamReady.set(verdict == nil ? 1.0 : 0.0)
        if let verdict, verdict != previous {
            core.logger.warning("not ready: vLLM is not usable", metadata: ["reason": "\(verdict)"])
        } else if let problem, verdict == nil {
            core.logger.warning("a readiness probe failed; still ready until the next one fails too", metadata: ["reason": "\(problem)"])
        } else if verdict == nil, previous != nil {
            core.logger.info("ready: vLLM answers /health and takes the gateway's key", metadata: ["upstream": "\(configuration.upstreamAuthority)"])
        }
    }

    /// The Prometheus exposition, as `/metrics` serves it.
    public var metricsText: String { core.metrics.exposition() }
    public var inFlight: Int { core.state.inFlight.load(ordering: .relaxed) }
    /// Whether `/readyz` answers 200: vLLM usable and not draining.
    public var isReady: Bool { core.state.isReady }
    /// Sockets listening on the public address: one per event loop.
    public var publicListeners: Int { listeners.withLockedValue { $0.servers.count } }
    /// Client connections open on the public listener.
    public var openConnections: Int { limiter.openConnections }
    /// Concurrency leases held now (0 when idle: none may leak).
    public var leasesHeld: Int { core.limits.leasesHeld }
}
