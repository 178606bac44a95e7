import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// The reloadable part of the gateway's behaviour, swapped whole on SIGHUP or a key-store change.
struct GatewayPolicy: Sendable {
    var keys: KeyTable
    var allowList: EndpointAllowList
    var metering: MeteringSettings

    init(keys: KeyTable, gateway: GatewayConfiguration.Routes) {
        self.keys = keys
        allowList = EndpointAllowList(gateway.allowedEndpoints, costs: gateway.routeCosts)
        metering = gateway.metering
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
    /// Why vLLM cannot be used, from the last readiness probe; `nil` once it answered 200.
    private let upstreamProblemBox = NIOLockedValueBox<String?>("not probed yet")
    let inFlight = Atomic<Int>(0)
    private let exchanges = NIOLockedValueBox<[ObjectIdentifier: @Sendable () -> Void]>([:])

    init(policy: GatewayPolicy) {
        policyBox = NIOLockedValueBox(policy)
    }

    var policy: GatewayPolicy { policyBox.withLockedValue { $0 } }

    var upstreamProblem: String? { upstreamProblemBox.withLockedValue { $0 } }

    /// Records the probe's verdict and returns the previous one, so the caller can log changes only.
    func exchangeUpstreamProblem(_ problem: String?) -> String? {
        upstreamProblemBox.withLockedValue { current in
            defer { current = problem }
            return current
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
