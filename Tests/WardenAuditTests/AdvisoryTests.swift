import Testing
import WardenAudit

@Suite("advisory table and version ranges")
struct AdvisoryTests {
    func version(_ text: String) throws -> PackageVersion { try #require(PackageVersion(text)) }

    @Test("PEP 440 ordering: release segments, pre-releases, post-releases, local labels")
    func ordering() throws {
        let ascending = ["0.8.4", "0.8.5.dev1", "0.8.5a1", "0.8.5b2", "0.8.5rc1", "0.8.5", "0.8.5.post1", "0.9", "0.10.1", "0.10.1.1", "0.11.0rc1", "0.11.0", "0.11.1"]
        for (lower, higher) in zip(ascending, ascending.dropFirst()) {
            #expect(try version(lower) < version(higher), "\(lower) < \(higher)")
        }
        #expect(try version("0.11.0") == version("0.11"))
        #expect(try version("0.11.0+cu128") == version("0.11.0"))
        #expect(try version("v0.8.5") == version("0.8.5"))
        #expect(PackageVersion("unknown") == nil && PackageVersion("0.8.5foo") == nil)
    }

    @Test("ranges include the first affected version and exclude the fixed one; pre-releases of the fix are affected")
    func boundaries() throws {
        let mooncake = try #require(AdvisoryTable.entries.first { $0.id == "GHSA-hj4w-hm2g-p6w5" })
        #expect(mooncake.range == ">=0.6.5, <0.8.5")
        for affected in ["0.6.5", "0.7.0", "0.8.4", "0.8.4.post1", "0.8.5rc1"] { #expect(mooncake.affects(try version(affected)), "\(affected)") }
        for safe in ["0.6.4", "0.6.5rc1", "0.8.5", "0.8.5.post1", "0.10.1.1"] { #expect(!mooncake.affects(try version(safe)), "\(safe)") }
        let timing = try #require(AdvisoryTable.entries.first { $0.id == "GHSA-wr9h-g72x-mwhm" })
        let (oldest, candidate, fixed) = (try version("0.1.0"), try version("0.11.0rc1"), try version("0.11.0"))
        #expect(timing.introduced == nil && timing.affects(oldest) && timing.affects(candidate) && !timing.affects(fixed))
        let autoMap = try #require(AdvisoryTable.entries.first { $0.id == "GHSA-2pc9-4j83-qjmr" })
        let (patch, before) = (try version("0.10.1.1"), try version("0.10.0"))
        #expect(autoMap.affects(patch) && !autoMap.affects(before))
    }

    @Test("every entry cites its vLLM advisory and has a parsable range")
    func sources() throws {
        #expect(!AdvisoryTable.entries.isEmpty)
        for advisory in AdvisoryTable.entries {
            #expect(advisory.source == "https://github.com/vllm-project/vllm/security/advisories/\(advisory.id)")
            #expect(PackageVersion(advisory.fixed) != nil && (advisory.introduced.map { PackageVersion($0) != nil } ?? true))
            #expect(advisory.cve.hasPrefix("CVE-") && !advisory.summary.isEmpty)
        }
        #expect(Set(AdvisoryTable.entries.map(\.id)).count == AdvisoryTable.entries.count)
    }

    @Test("a finding says the version, the fix, and whether this deployment can reach it")
    func reachability() throws {
        var host = try Guide.host()
        host.processTable[4242]?.argv += ["--kv-transfer-config", "{\"kv_connector\":\"MooncakeConnector\",\"kv_role\":\"kv_both\"}"]
        let findings = try Audit.run(host: host).findings
        let mooncake = try #require(findings.first { $0.id == "advisory.GHSA-hj4w-hm2g-p6w5" })
        #expect(mooncake.severity == .critical)
        #expect(mooncake.title == "vLLM 0.8.4 is affected by GHSA-hj4w-hm2g-p6w5 (CVE-2025-32444), fixed in 0.8.5")
        #expect(mooncake.evidence.contains("reachable here because --kv-transfer-config uses MooncakeConnector"))
        #expect(findings.contains { $0.id == "exposure.distributed-ports" })
        #expect(!findings.contains { $0.id == "advisory.GHSA-2pc9-4j83-qjmr" }, "0.8.4 predates the auto_map advisory")
    }
}
