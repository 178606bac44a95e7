import NIOConcurrencyHelpers
import NIOCore

/// Whether every event loop still runs tasks, for systemd's watchdog: each ``tick()`` asks whether every loop ran the
/// probe the previous tick gave it, and only then gives each a new one. A loop stuck in a handler (a livelock, a
/// blocking call) stops the answers, the gateway stops sending `WATCHDOG=1`, and after `WatchdogSec=` systemd
/// aborts and restarts it. A process merely alive would keep pinging from its own thread: the loops are what serve.
final class EventLoopHeartbeat: Sendable {
    private let loops: [any EventLoop]
    /// Per loop: its last probe ran (true before the first tick).
    private let answered: NIOLockedValueBox<[Bool]>

    init(loops: [any EventLoop]) {
        self.loops = loops
        answered = NIOLockedValueBox(Array(repeating: true, count: loops.count))
    }

    /// The loops that have not run their last probe; when there are none, every loop gets a new probe.
    func tick() -> [Int] {
        let stuck = answered.withLockedValue { flags in flags.indices.filter { !flags[$0] } }
        guard stuck.isEmpty else { return stuck }
        answered.withLockedValue { $0 = Array(repeating: false, count: loops.count) }
        for (index, loop) in loops.enumerated() {
            loop.execute { [answered] in answered.withLockedValue { $0[index] = true } }
        }
        return []
    }
}
