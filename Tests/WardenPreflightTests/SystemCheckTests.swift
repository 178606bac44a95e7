import Testing
import WardenConfig
@testable import WardenPreflight

@Suite("preflight: host checks")
struct SystemCheckTests {
    @Test("a taken port fails; a non-loopback host warns")
    func port() {
        var host = FakeHost.healthy()
        host.boundPorts = [8000]
        let taken = outcome("net.port", host: host)
        #expect(taken.status == .fail)
        #expect(taken.detail.contains("Address already in use"))
        var exposed = FakeHost.deployment
        exposed.vllm.host = "0.0.0.0"
        #expect(outcome("net.port", host: FakeHost.healthy(), deployment: exposed).status == .warn)
    }

    @Test("cache directories must be writable by the service user, or creatable")
    func caches() {
        var host = FakeHost.healthy()
        #expect(outcome("fs.caches", host: host).status == .pass)
        host.writable.remove("/var/cache/vllm")
        let result = outcome("fs.caches", host: host)
        #expect(result.status == .fail)
        #expect(result.detail.contains("TRITON_CACHE_DIR=/var/cache/vllm/triton is not writable by vllm"))
        var noUser = FakeHost.healthy()
        noUser.accounts = [:]
        #expect(outcome("fs.caches", host: noUser).detail.contains("does not exist"))
        var open = FakeHost.healthy()
        open.files["/var/cache/vllm"]?.mode = 0o777
        #expect(outcome("fs.caches", host: open).status == .warn)
    }

    @Test("low disk space warns, then fails")
    func disk() {
        var host = FakeHost.healthy()
        host.spaces["/"] = FilesystemSpace(available: 5 << 30, total: 100 << 30)
        #expect(outcome("fs.disk", host: host).status == .warn)
        host.spaces["/"] = FilesystemSpace(available: 1 << 29, total: 100 << 30)
        #expect(outcome("fs.disk", host: host).status == .fail)
    }

    @Test("/dev/shm matters only with several GPUs")
    func shm() {
        var host = FakeHost.healthy()
        host.spaces["/dev/shm"] = FilesystemSpace(available: 64 << 20, total: 64 << 20)
        #expect(outcome("fs.shm", host: host).status == .fail)
        var single = FakeHost.deployment
        single.vllm.tensorParallelSize = 1
        #expect(outcome("fs.shm", host: host, deployment: single).status == .skip)
    }

    @Test("too little RAM fails; hidden meminfo warns")
    func memory() {
        var host = FakeHost.healthy()
        host.memoryAvailable = 2 << 30
        #expect(outcome("sys.memory", host: host).status == .fail)
        host.memoryAvailable = nil
        #expect(outcome("sys.memory", host: host).status == .warn)
    }

    @Test("RLIMIT_NOFILE: outside the unit a warning; inside, the clamp is named with its cause")
    func nofile() {
        var host = FakeHost.healthy()
        host.fileLimit = (1024, 4096)
        let byHand = outcome("sys.nofile", host: host)
        #expect(byHand.status == .warn)
        #expect(byHand.detail.contains("vllm.service sets LimitNOFILE=65535"))
        host.environment["INVOCATION_ID"] = "0123"
        host.fileLimit = (20_000, 20_000)
        let clamped = outcome("sys.nofile", host: host)
        #expect(clamped.status == .warn)
        #expect(clamped.detail.contains("clamped to 20000"))
        #expect(clamped.detail.contains("CAP_SYS_RESOURCE"))
        host.file("/proc/sys/fs/nr_open", "16384\n")
        #expect(outcome("sys.nofile", host: host).detail.contains("fs.nr_open is 16384"))
        host.fileLimit = (1024, 1024)
        #expect(outcome("sys.nofile", host: host).status == .fail)
        host.fileLimit = (65_535, 65_535)
        #expect(outcome("sys.nofile", host: host).status == .pass)
    }

    @Test("the key file must exist, be root-owned, private and hold a strong key")
    func envFile() {
        let path = "/etc/warden/vllm.env"
        #expect(outcome("secrets.envfile", host: FakeHost.healthy()).status == .pass)
        var missing = FakeHost.healthy()
        missing.files[path] = nil
        #expect(outcome("secrets.envfile", host: missing).detail.contains("does not exist"))
        var worldReadable = FakeHost.healthy()
        worldReadable.files[path]?.mode = 0o644
        #expect(outcome("secrets.envfile", host: worldReadable).detail.contains("readable by everyone"))
        var owned = FakeHost.healthy()
        owned.files[path]?.uid = 997
        #expect(outcome("secrets.envfile", host: owned).detail.contains("not root"))
        var weak = FakeHost.healthy()
        weak.file(path, "VLLM_API_KEY=changeme\n", mode: 0o640)
        #expect(outcome("secrets.envfile", host: weak).detail.contains("weak"))
        var none = FakeHost.healthy()
        none.file(path, "OTHER=1\n", mode: 0o640)
        #expect(outcome("secrets.envfile", host: none).detail.contains("no VLLM_API_KEY"))
    }

    @Test("a check that hangs fails within its budget instead of holding up the start")
    func hungCheck() {
        struct HangingHost: PreflightHost {
            var base = FakeHost.healthy()
            func nvmlReport(deviceIndexes: GPUSelection) -> NVMLReport {
                while true { sleep(1) }
            }
            func fileInfo(_ path: String) -> FileInfo? { base.fileInfo(path) }
            func readFile(_ path: String, limit: Int) -> [UInt8]? { base.readFile(path, limit: limit) }
            func listDirectory(_ path: String) -> [String]? { base.listDirectory(path) }
            func filesystemSpace(_ path: String) -> FilesystemSpace? { base.filesystemSpace(path) }
            func probeWrite(directory: String, as account: Account) -> WriteProbe { base.probeWrite(directory: directory, as: account) }
            func lookupAccount(_ name: String) -> Account? { base.lookupAccount(name) }
            func lookupGroup(_ name: String) -> UInt32? { base.lookupGroup(name) }
            func bindError(host: String, port: Int) -> String? { nil }
            func processes() -> [HostProcess] { [] }
            func availableMemory() -> UInt64? { base.availableMemory() }
            func openFileLimit() -> (soft: UInt64, hard: UInt64) { base.openFileLimit() }
            var environment: [String: String] { [:] }
            var effectiveUID: UInt32 { 0 }
        }
        let check = PreflightCheck("test.hang", "hangs", budget: .milliseconds(200)) { context in
            _ = context.nvml
            return .pass("unreachable")
        }
        let report = Preflight.run(checks: [check, SystemChecks.nofile], deployment: FakeHost.deployment, host: HangingHost())
        #expect(report.results.map(\.status) == [.fail, .pass])
        #expect(report.results[0].detail.contains("did not finish within"))
        // The check never returns: any finite duration shows the budget cut it off (generous for a loaded machine).
        #expect(report.results[0].durationMilliseconds < 10_000)
    }

    @Test("text output has one line per check and a fix under failures; JSON follows the schema")
    func rendering() throws {
        var host = FakeHost.healthy()
        host.boundPorts = [8000]
        let report = Preflight.run(deployment: FakeHost.deployment, host: host, only: ["net.port", "sys.nofile"])
        #expect(report.text.contains("FAIL  net.port    cannot bind 127.0.0.1:8000: Address already in use\n"))
        #expect(report.text.contains("fix: another process listens there"))
        #expect(report.text.contains("PASS  sys.nofile  hard limit 524288"))
        #expect(report.text.contains("1 passed, 1 failed, 0 warnings, 0 skipped"))
        #expect(report.text.contains("what failed may clear by itself (systemd retries the start)"))
        #expect(report.json.hasPrefix(#"{"schema":"warden.preflight/v1","ok":false,"permanent_failure":false,"summary":{"pass":1,"warn":0,"fail":1,"skip":0,"duration_ms":"#))
        #expect(report.json.contains(#""id":"net.port","status":"fail","#))
        #expect(report.json.contains(#""transient":true"#))
        #expect(report.json.contains(#""id":"sys.nofile","status":"pass","detail":"hard limit 524288","hint":null,"transient":false,"duration_ms":"#))
    }
}

#if canImport(Glibc)
import Glibc
#endif
