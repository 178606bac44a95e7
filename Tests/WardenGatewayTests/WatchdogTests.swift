import Foundation
import NIOConcurrencyHelpers
import NIOPosix
import Testing
@testable import WardenGateway
import WardenTestSupport

/// The watchdog: systemd's settings read as `sd_watchdog_enabled(3)` does, and the event loops' heartbeat.
@Suite("the gateway's watchdog pings")
struct WatchdogTests {
    @Test("WATCHDOG_USEC is the timeout when WATCHDOG_PID is absent or this process; never without a socket")
    func settings() {
        func timeout(_ environment: [String: String]) -> Duration? {
            ServiceManagerNotifier.fromEnvironment({ environment[$0] }, processID: 42).watchdogTimeout
        }
        let socket = ["NOTIFY_SOCKET": "/run/systemd/notify"]
        #expect(timeout(socket.merging(["WATCHDOG_USEC": "30000000"]) { $1 }) == .seconds(30))
        #expect(timeout(socket.merging(["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"]) { $1 }) == .seconds(30))
        #expect(timeout(socket.merging(["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"]) { $1 }) == nil, "meant for another process")
        #expect(timeout(["WATCHDOG_USEC": "30000000"]) == nil, "nowhere to send the pings")
        #expect(timeout(socket.merging(["WATCHDOG_USEC": "0"]) { $1 }) == nil)
        #expect(timeout(socket.merging(["WATCHDOG_USEC": "soon"]) { $1 }) == nil)
        #expect(timeout(socket) == nil)
    }

    @Test("a loop stuck in a task stops the heartbeat until it runs again")
    func stuckLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let heartbeat = EventLoopHeartbeat(loops: loops)
        #expect(heartbeat.tick().isEmpty, "the first tick only sends probes")
        #expect(try await eventually { heartbeat.tick().isEmpty }, "both loops answer")

        let release = NIOLockedValueBox(false)
        loops[1].execute { while !release.withLockedValue({ $0 }) { usleep(1_000) } }  // a handler that never returns
        #expect(try await eventually { heartbeat.tick() == [1] }, "the stuck loop is named")
        #expect(heartbeat.tick() == [1], "and stays named while it is stuck")
        release.withLockedValue { $0 = true }
        #expect(try await eventually { heartbeat.tick().isEmpty }, "it answers again once free")
        try await group.shutdownGracefully()
    }
}
