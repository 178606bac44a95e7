import Foundation
import Testing
import VLLMSim
import WardenGateway
import WardenTestSupport

/// `warden status` against a real gateway process and vllm-sim: healthy, then down when vLLM reports unhealthy.
@Suite("warden status (the real binary)")
struct StatusCommandTests {
    @Test("healthy with keys and recent refusals listed; down (exit 3) when vLLM's /health fails; JSON for monitoring")
    func status() async throws {
        try await withGatewayProcess { gateway in
        let (path, simPort) = (gateway.config, gateway.simulatorPort)
        let ports = [gateway.port, gateway.adminPort]
        let keys = try KeyStore(path: gateway.store, create: false)
        _ = try keys.create(name: "active one")
        let (_, revoked) = try keys.create(name: "revoked one")
        try keys.revoke(publicID: revoked.publicID)
        #expect(try await eventually(timeout: .seconds(10)) { (try? request(port: ports[0], "GET", "/health").status) == 200 })
        _ = try request(port: ports[0], "GET", "/v1/models", headers: ["Authorization": "Bearer nonsense"])

        let healthy = try BuiltProduct.run("warden", ["status", "--config", path])
        #expect(healthy.status == 0, "\(healthy.stdout)\(healthy.stderr)")
        #expect(healthy.stdout.contains("status: HEALTHY"))
        #expect(healthy.stdout.contains("1 active, 0 expired, 1 revoked"))
        #expect(healthy.stdout.contains("auth_malformed 1"), "\(healthy.stdout)")
        let json = try jsonObject(try BuiltProduct.run("warden", ["status", "--config", path, "--format", "json"]).stdout)
        #expect(json["status"] as? String == "healthy")
        #expect((json["vllm"] as? [String: Any])?["requests_running"] as? Double == 0)

        _ = try request(port: simPort, "POST", "/sim/faults", json: #"{"unhealthy":true}"#)
        let down = try BuiltProduct.run("warden", ["status", "--config", path])
        #expect(down.status == 3, "\(down.stdout)")
        #expect(down.stdout.contains("/health answered 503"))
        }
    }
}
