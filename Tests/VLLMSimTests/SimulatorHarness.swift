import WardenTestSupport
import VLLMSim

/// Runs `body` against a simulator started in-process on a free loopback port, and always stops it.
func withSimulator(_ configuration: SimulatorConfiguration = SimulatorConfiguration(),
                   _ body: (VLLMSimulator, Int) async throws -> Void) async throws {
    let simulator = VLLMSimulator(configuration: configuration)
    let port = try await simulator.start(host: "127.0.0.1", port: 0)
    do {
        try await body(simulator, port)
    } catch {
        await simulator.shutdown()
        throw error
    }
    await simulator.shutdown()
}

extension VLLMSimulator {
    /// One counter of `/sim/stats`.
    func stat(_ name: String) throws -> Int {
        try jsonObject(statsJSON)[name] as? Int ?? -1
    }
}

let chatBody = #"{"model":"sim-model","messages":[{"role":"user","content":"Say hello"}]"#
func chat(_ extra: String = "") -> String { chatBody + extra + "}" }
