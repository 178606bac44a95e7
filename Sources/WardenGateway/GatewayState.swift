import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// The reloadable part of the gateway's behaviour, swapped whole on SIGHUP or a key-store change. Immutable and
/// shared: every request reads the current one, which costs a retain rather than a copy of each table.
final class GatewayPolicy: Sendable {
    let keys: KeyTable
    let allowList: EndpointAllowList
    let metering: MeteringSettings

    init(keys: KeyTable, gateway: GatewayConfiguration.Routes) {
        self.keys = keys
        allowList = EndpointAllowList(gateway.allowedEndpoints, costs: gateway.routeCosts)
        metering = gateway.metering
    }

    private init(keys: KeyTable, allowList: EndpointAllowList, metering: MeteringSettings) {
        self.keys = keys
        self.allowList = allowList
        self.metering = metering
    }

    /// The same policy with a reloaded key table.
    func replacingKeys(_ table: KeyTable) -> GatewayPolicy {
        GatewayPolicy(keys: table, allowList: allowList, metering: metering)
    }
}

/// The deployment file's choices for routes whose cost the request alone does not tell.
struct MeteringSettings: Sendable, Equatable {
    /// Tokens per second of audio; `nil`: audio routes cannot be allowed.
    var audioTokensPerSecond: Int?
    var allowBackgroundResponses = false
}

/// State shared by every connection: the current policy, drain and health flags, and the live exchanges
/// (so drain can end the streams still running when its time is up).
final class GatewayState: Sendable {
    private let policyBox: NIOLockedValueBox<GatewayPolicy>
    let draining = Atomic<Bool>(false)
    /// Why vLLM cannot be used, from the readiness probes; `nil` while it answers.
    private let readiness = NIOLockedValueBox(UpstreamReadiness())
    let inFlight = Atomic<Int>(0)
    private let exchanges = NIOLockedValueBox<[ObjectIdentifier: @Sendable () -> Void]>([:])

    init(policy: GatewayPolicy) {
        policyBox = NIOLockedValueBox(policy)
    }

    var policy: GatewayPolicy { policyBox.withLockedValue { $0 } }

    var upstreamProblem: String? { readiness.withLockedValue { $0.problem } }

    /// What `/health` and `/readyz` answer: vLLM usable and not draining.
    var isReady: Bool { !draining.load(ordering: .relaxed) && upstreamProblem == nil }

    /// Records a probe's result; returns the verdict before and after it, so the caller can log changes only.
    func recordUpstreamProbe(_ problem: String?) -> (before: String?, after: String?) {
        readiness.withLockedValue { readiness in
            let before = readiness.problem
            readiness.record(problem)
            return (before, readiness.problem)
        }
    }

    func replacePolicy(_ policy: GatewayPolicy) {
        policyBox.withLockedValue { $0 = policy }
    }

    /// Registers a running exchange with the action that ends it at drain time.
    func register(_ id: ObjectIdentifier, terminate: @escaping @Sendable () -> Void) {
        exchanges.withLockedValue { $0[id] = terminate }
        inFlight.add(1, ordering: .relaxed)
    }

    func unregister(_ id: ObjectIdentifier) {
        if exchanges.withLockedValue({ $0.removeValue(forKey: id) }) != nil {
            inFlight.subtract(1, ordering: .relaxed)
        }
    }

    /// Ends every exchange still running (drain timeout reached).
    func terminateAll() {
        for terminate in exchanges.withLockedValue({ Array($0.values) }) { terminate() }
    }
}

/// Readiness from successive probes of vLLM. A gateway that is ready turns not ready on the second failed probe in a
/// row: one probe can time out on a loaded host (seen in CI: loopback connects taking 2 s while Python clients
/// started), and a load balancer that pulls the gateway for that drops every client for nothing. One that is not
/// ready (at start, or after failures) takes the first probe that succeeds.
struct UpstreamReadiness: Sendable, Equatable {
    /// Failed probes in a row that turn a ready gateway not ready.
    static let failuresToTurn = 2
    private(set) var problem: String? = "not probed yet"
    private var failuresInRow = 0

    mutating func record(_ probe: String?) {
        guard let probe else {
            failuresInRow = 0
            problem = nil
            return
        }
        failuresInRow += 1
        if problem != nil || failuresInRow >= Self.failuresToTurn { problem = probe }
    }
}
