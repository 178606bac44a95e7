import Testing
@testable import WardenGateway

@Suite("upstream readiness from successive probes")
struct UpstreamReadinessTests {
    @Test("not ready until the first success; then two failures in a row turn it, one does not; a success restores it")
    func hysteresis() {
        var readiness = UpstreamReadiness()
        #expect(readiness.problem == "not probed yet")
        readiness.record("refused")
        #expect(readiness.problem == "refused", "not ready at start: the first failure stands")
        readiness.record(nil)
        #expect(readiness.problem == nil)
        readiness.record("timeout")
        #expect(readiness.problem == nil, "one slow probe keeps a ready gateway ready")
        readiness.record(nil)
        readiness.record("timeout")
        #expect(readiness.problem == nil, "a success in between starts the count again")
        readiness.record("401")
        #expect(readiness.problem == "401")
        readiness.record("503")
        #expect(readiness.problem == "503", "while not ready the latest reason is shown")
        readiness.record(nil)
        #expect(readiness.problem == nil)
    }
}
