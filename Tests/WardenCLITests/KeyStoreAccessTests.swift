import Foundation
import Testing
import WardenGateway

/// `warden keys` and `warden usage` run by an account other than the store's owner: reading needs only read
/// access, and a permission problem is named as one — never met with advice to restore or replace the store.
@Suite("the key store used by an account that may read it but not write it, or not even read it")
struct KeyStoreAccessTests {
    /// A store with one key and one hour of usage, its files closed (no gateway running).
    func makeStore(_ scratch: ScratchDirectory) throws -> (config: String, store: String, id: String, records: [KeyRecord]) {
        let store = scratch.url.appendingPathComponent("keys/keys.sqlite").path
        let config = try scratch.write("warden.yaml", """
            vllm: {model: /models/qwen, served_model_name: qwen}
            gateway: {listen: 127.0.0.1:18080, upstream: http://127.0.0.1:18000, key_store: \(store)}
            """)
        // Reachable by `nobody` whatever the umask: it reads the deployment file and enters the scratch directory.
        chmod(scratch.url.path, 0o755)
        chmod(config, 0o644)
        let writer = try KeyStore(path: store, create: true)
        let (token, _) = try writer.create(name: "team-a")
        try writer.addUsage([UsageCell(key: token.publicID, model: "qwen", route: "chat", hour: Int64(Date().timeIntervalSince1970) / 3600 * 3600,
                                       outcome: ""): UsageCounts(requests: 3, promptTokens: 30, completionTokens: 12, chargedTokens: 42)])
        return (config, store, token.publicID, try writer.list())
    }

    /// Runs `body` on a fresh store whose directory and files have the given modes (restored afterwards, so the
    /// scratch directory can be removed).
    func withStore(directory: mode_t, files: mode_t,
                   _ body: (_ scratch: ScratchDirectory, _ config: String, _ store: String, _ id: String, _ records: [KeyRecord]) throws -> Void) throws {
        let scratch = try ScratchDirectory()
        let (config, store, id, records) = try makeStore(scratch)
        try setModes(store, directory: directory, files: files)
        defer { try? setModes(store, directory: 0o700, files: 0o600) }
        try body(scratch, config, store, id, records)
    }

    /// Sets the modes of the store's directory and of every file in it.
    func setModes(_ store: String, directory: mode_t, files: mode_t) throws {
        let folder = (store as NSString).deletingLastPathComponent
        for name in try FileManager.default.contentsOfDirectory(atPath: folder) { #expect(chmod(folder + "/" + name, files) == 0) }
        #expect(chmod(folder, directory) == 0)
    }

    /// `warden` as an account without privileges.
    func warden(_ arguments: [String], config: String, _ scratch: ScratchDirectory) throws -> CommandResult {
        try BuiltProduct.runUnprivileged("warden", arguments + ["--config", config], copyingInto: scratch)
    }

    /// Refused with the permission problem and its way out named (and `naming`, when given), never with a restore.
    func expectPermissionRefusal(_ refused: CommandResult, _ command: [String], naming: String = "run as root") {
        #expect(refused.status == 2, "\(command): \(refused.stdout)")
        #expect(refused.stderr.contains("run as root or as the gateway's user") && refused.stderr.contains(naming), "\(command): \(refused.stderr)")
        #expect(!refused.stderr.contains("restore"), "\(command): \(refused.stderr)")
    }

    @Test("read-only files: keys list and usage work; create and revoke say it is a permission problem")
    func readableButNotWritable() throws {
        try withStore(directory: 0o555, files: 0o444) { scratch, config, store, id, before in
            // No `-wal` beside the store and a directory nobody may write: the reader cannot make the WAL's shared memory.
            #expect(!FileManager.default.fileExists(atPath: store + "-wal"))
            let list = try warden(["keys", "list"], config: config, scratch)
            #expect(list.status == 0 && list.stdout.contains(id) && list.stdout.contains("team-a"), "\(list.stderr)")
            let usage = try warden(["usage", "--format", "json"], config: config, scratch)
            #expect(usage.status == 0 && usage.stdout.contains(#""charged_tokens":42"#), "\(usage.stdout)\(usage.stderr)")
            for command in [["keys", "create", "--name", "team-b"], ["keys", "revoke", id], ["keys", "rotate", id]] {
                expectPermissionRefusal(try warden(command, config: config, scratch), command)
            }
            #expect(try KeyStore(path: store, access: .readOnly).list() == before, "nothing was written: no key added, revoked or rotated")
        }
    }

    @Test("a gateway holding the store open (its WAL files present) does not stop a read-only listing",
          .enabled(if: getuid() == 0, "as root the reader is `nobody`, who may not write the WAL's shared memory; as the owner it may"))
    func readableWhileAWriterHasItOpen() throws {
        let scratch = try ScratchDirectory()
        let (config, store, id, _) = try makeStore(scratch)
        let writer = try KeyStore(path: store, create: false)
        defer { try? setModes(store, directory: 0o700, files: 0o600) }
        try withExtendedLifetime(writer) {
            _ = try writer.list()
            #expect(FileManager.default.fileExists(atPath: store + "-wal"), "a writer keeps the WAL open")
            try setModes(store, directory: 0o755, files: 0o644)
            let list = try warden(["keys", "list"], config: config, scratch)
            #expect(list.status == 0 && list.stdout.contains(id), "\(list.stderr)")
        }
    }

    @Test("unreadable files: every command names the permission problem and the way out")
    func unreadable() throws {
        try withStore(directory: 0o755, files: 0o000) { scratch, config, _, id, _ in
            for command in [["keys", "list"], ["usage"], ["keys", "create", "--name", "team-b"], ["keys", "revoke", id]] {
                expectPermissionRefusal(try warden(command, config: config, scratch), command, naming: "Permission denied")
            }
        }
    }

    @Test("modes an operator gave an existing store stay when a key is created; a new store is 0600")
    func modesKept() throws {
        let scratch = try ScratchDirectory()
        let (_, store, _, _) = try makeStore(scratch)
        var status = stat()
        #expect(stat(store, &status) == 0 && status.st_mode & 0o777 == 0o600)
        #expect(chmod(store, 0o640) == 0)
        _ = try KeyStore(path: store, create: true).create(name: "team-b")
        #expect(stat(store, &status) == 0 && status.st_mode & 0o777 == 0o640, "group read access given by the operator is kept")
    }
}
