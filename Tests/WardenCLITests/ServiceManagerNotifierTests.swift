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
        try ServiceManagerNotifier(socketPath: onPath.path).notify("READY=1\nSTATUS=listening")
        #expect(onPath.receive() == ["READY=1\nSTATUS=listening"])
        #expect(onPath.received("STATUS=listening"))

        let abstract = try NotifySocket(path: "@warden-test-\(UUID().uuidString)")
        try ServiceManagerNotifier(socketPath: abstract.path).notify("STOPPING=1")
        #expect(abstract.receive() == ["STOPPING=1"])
    }

    @Test("no socket sends nothing; a relative path, a bare @, a name too long for sun_path or nobody listening is an error that names the socket")
    func failuresAreReported() throws {
        try ServiceManagerNotifier.none.notify("READY=1")
        for path in ["notify", "@", "/" + String(repeating: "a", count: 108), "vsock:2:1234"] {
            #expect(throws: ServiceManagerNotifier.Failure.self, "\(path)") { try ServiceManagerNotifier(socketPath: path).notify("READY=1") }
        }
        let unheard = #expect(throws: ServiceManagerNotifier.Failure.self) { try ServiceManagerNotifier(socketPath: "/nonexistent/notify").notify("READY=1") }
        #expect(unheard?.description == "sending to /nonexistent/notify: No such file or directory")
        #expect(ServiceManagerNotifier.address("/" + String(repeating: "a", count: 106)) != nil, "107 bytes and the NUL fill sun_path")
    }
}
