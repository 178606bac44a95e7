import Foundation
import NIOPosix
import VLLMSim
import WardenConfig
import WardenTestSupport
@testable import WardenGateway

/// vllm-sim and the gateway in-process on free loopback ports, with a fresh key store and key; always stopped.
struct GatewayHarness {
    let simulator: VLLMSimulator
    let gateway: GatewayServer
    let port: Int
    let adminPort: Int
    let key: String
    let store: KeyStore
    let scratch: URL
    let accessLog: MemorySink
    let upstreamKey: String
    let simulatorPort: Int

    var bearer: [String: String] { ["Authorization": "Bearer \(key)"] }

    /// Requests the simulator has seen on any route, except the gateway's own readiness probes (`GET /health`,
    /// `HEAD /v1/models`).
    func upstreamRequests() throws -> Int {
        (try jsonObject(simulator.statsJSON)["requests"] as? [String: Int] ?? [:])
            .filter { $0.key != "GET /health" && $0.key != "HEAD /v1/models" }.values.reduce(0, +)
    }

    /// Prompt and generated tokens vllm-sim counted on one route (`POST /v1/responses`).
    func simRoute(_ route: String) throws -> (prompt: Int, generated: Int) {
        let routes = try simStats()["routes"] as? [String: [String: Int]] ?? [:]
        return (routes[route]?["prompt_tokens"] ?? 0, routes[route]?["generated_tokens"] ?? 0)
    }

    /// The access log's records, parsed, in the order they were written.
    func accessRecords() throws -> [[String: Any]] { try accessLog.contents.map { try jsonObject($0) } }

    /// One sample of the admin listener's `/metrics`, named with its labels as exposed
    /// (`warden_tokens_total{key="…",direction="out"}`); 0 when the series does not exist yet.
    func metric(_ sample: String) throws -> Double {
        let exposition = try request(port: adminPort, "GET", "/metrics").body
        let line = exposition.split(separator: "\n").first { $0.hasPrefix(sample + " ") }
        return line.flatMap { Double($0.dropFirst(sample.count + 1)) } ?? 0
    }

    /// What the access log charged to `key`, summed.
    func charged(key: String) throws -> Int {
        try accessLog.contents.map { try jsonObject($0) }.filter { $0["key"] as? String == key }
            .reduce(0) { $0 + ($1["tokens_charged"] as? Int ?? 0) }
    }

    func simStat(_ name: String) throws -> Int { try jsonObject(simulator.statsJSON)[name] as? Int ?? -1 }
    func simStats() throws -> [String: Any] { try jsonObject(simulator.statsJSON) }

    /// Probes vLLM until the gateway is ready: its start-up probe can time out while the whole suite loads the
    /// machine (the in-process simulators share one event loop group), and a client that checks `/health` first
    /// (guidellm) must meet a ready gateway.
    func waitUntilReady() async throws -> Bool {
        for _ in 0..<50 {
            if gateway.isReady { return true }
            await gateway.refreshUpstreamHealth()
            if gateway.isReady { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }
}

/// `ownSimulatorThread`: vllm-sim runs on an event loop of its own, so a test that makes it write megabytes at
/// once stalls no other test's connections.
func withGateway(simulator simConfiguration: SimulatorConfiguration = SimulatorConfiguration(servedModelName: "qwen"),
                 ownSimulatorThread: Bool = false,
                 configure: (inout GatewayConfiguration) -> Void = { _ in },
                 _ body: (GatewayHarness) async throws -> Void) async throws {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("warden-gw-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let upstreamKey = "upstream-\(UUID().uuidString)"
    var simulation = simConfiguration
    simulation.apiKeys = [upstreamKey]
    let simulatorGroup = ownSimulatorThread ? MultiThreadedEventLoopGroup(numberOfThreads: 1) : nil
    let simulator = VLLMSimulator(configuration: simulation, group: simulatorGroup ?? MultiThreadedEventLoopGroup.singleton, recordsResponses: true)
    let simPort = try await simulator.start(host: "127.0.0.1", port: 0)

    let storePath = scratch.appendingPathComponent("keys.sqlite").path
    let store = try KeyStore(path: storePath, create: true)
    let (token, _) = try store.create(name: "test")
    var deployment = Deployment(vllm: .init(model: "/models/\(simulation.servedModelName)", servedModelName: simulation.servedModelName))
    deployment.gateway.upstream = "http://127.0.0.1:\(simPort)"
    deployment.gateway.keyStore = storePath
    deployment.gateway.drainTimeout = 2
    var configuration = try GatewayConfiguration(deployment: deployment, deploymentPath: nil, upstreamKey: upstreamKey)
    configuration.listenPort = 0
    configuration.adminPort = 0
    // Generous limits unless a test sets its own, so unrelated tests never meet a 429.
    configuration.limits.requestsPerMinute = 60_000
    configuration.limits.burst = 1000
    configuration.limits.tokensPerMinute = 100_000_000
    configuration.limits.concurrency = 1000
    // vllm-sim's per-request faults travel in a header the gateway forwards only when told to.
    configuration.forwardedHeaders.insert("x-sim-fault")
    configure(&configuration)
    let accessLog = MemorySink()
    let gateway = try GatewayServer(configuration: configuration, accessLog: accessLog)
    let (port, adminPort) = try await gateway.start()
    let harness = GatewayHarness(simulator: simulator, gateway: gateway, port: port, adminPort: adminPort, key: token.text, store: store,
                                 scratch: scratch, accessLog: accessLog, upstreamKey: upstreamKey,
                                 simulatorPort: simPort)
    do {
        try await body(harness)
    } catch {
        await gateway.drain()
        await simulator.shutdown()
        try? await simulatorGroup?.shutdownGracefully()
        throw error
    }
    await gateway.drain()
    await simulator.shutdown()
    try? await simulatorGroup?.shutdownGracefully()
}

/// Checks the OpenAI error envelope: `{"error":{"message","type","param","code"}}` with a string code.
func isOpenAIError(_ body: String) -> Bool {
    guard let error = (try? jsonObject(body))?["error"] as? [String: Any] else { return false }
    return error["message"] is String && error["type"] is String && error["code"] is String && error.keys.contains("param")
}
