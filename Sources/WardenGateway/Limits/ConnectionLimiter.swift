import Synchronization
import WardenConfig

/// Caps open client connections in total and per address (an IPv6 /64 counts as one), so one client holding
/// idle connections cannot use up the descriptors every other client needs. Trusted proxies and loopback are
/// exempt from the per-address cap: behind Caddy or nginx every client arrives from the proxy's address. Pure
/// policy behind one lock: the server asks on accept and tells on close.
final class ConnectionLimiter: Sendable {
    private struct State {
        var total = 0
        var perGroup: [AddressGroup: Int] = [:]
    }

    let maxTotal: Int
    let maxPerAddress: Int
    let exempt: [IPNetwork]
    private let state = Mutex(State())

    init(maxTotal: Int, maxPerAddress: Int, exempt: [IPNetwork]) {
        self.maxTotal = maxTotal
        self.maxPerAddress = maxPerAddress
        self.exempt = exempt
    }

    enum Refusal: String, Sendable { case total, address }

    /// Counts a new connection, or refuses it (an exempt or unknown address is counted in the total only).
    func open(from address: IPAddress?) -> Refusal? {
        let group = group(of: address)
        return state.withLock { state in
            guard state.total < maxTotal else { return .total }
            if let group {
                let held = state.perGroup[group, default: 0]
                guard held < maxPerAddress else { return .address }
                state.perGroup[group] = held + 1
            }
            state.total += 1
            return nil
        }
    }

    /// Forgets a connection counted by `open`.
    func close(from address: IPAddress?) {
        let group = group(of: address)
        state.withLock { state in
            state.total -= 1
            guard let group, let held = state.perGroup[group] else { return }
            if held <= 1 { state.perGroup.removeValue(forKey: group) } else { state.perGroup[group] = held - 1 }
        }
    }

    private func group(of address: IPAddress?) -> AddressGroup? {
        guard let address, !exempt.contains(where: { $0.contains(address) }) else { return nil }
        return AddressGroup(address)
    }

    var openConnections: Int { state.withLock { $0.total } }
}
