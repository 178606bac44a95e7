import Foundation
import Testing
@testable import WardenGateway

/// `sd_notify(3)`'s wire format, as systemd reads it from `$NOTIFY_SOCKET`.
@Suite("the gateway's notifications to systemd")
struct ServiceManagerNotifierTests {
    @Test("a path socket and an abstract (@) socket each get the assignments as one datagram")
    func delivers() throws {
        let scratch = try ScratchDirectory()
        let onPath = try NotifySocket(path: scratch.url.appendingPathComponent("notify").path)
        #expect(ServiceManagerNotifier(socketPath: onPath.path).notify("READY=1\nSTATUS=listening"))
        #expect(onPath.receive() == ["READY=1\nSTATUS=listening"])
        #expect(onPath.received("STATUS=listening") && !onPath.received("READY"))

        let abstract = try NotifySocket(path: "@warden-test-\(UUID().uuidString)")
        #expect(ServiceManagerNotifier(socketPath: abstract.path).notify("STOPPING=1"))
        #expect(abstract.receive() == ["STOPPING=1"])
    }

    @Test("no socket, a relative path, a bare @, a name too long for sun_path or nobody listening: nothing sent, no error")
    func sendsNothingWhereItCannot() throws {
        #expect(!ServiceManagerNotifier.none.notify("READY=1"))
        for path in ["notify", "", "@", "/" + String(repeating: "a", count: 108), "/nonexistent/notify"] {
            #expect(!ServiceManagerNotifier(socketPath: path).notify("READY=1"), "\(path)")
        }
        #expect(ServiceManagerNotifier.address("/" + String(repeating: "a", count: 106)) != nil, "107 bytes and the NUL fill sun_path")
    }
}
