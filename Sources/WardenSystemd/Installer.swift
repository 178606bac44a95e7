import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import WardenConfig

/// One thing `warden install` puts in place.
public struct InstallEntry: Sendable, Equatable {
    public enum Content: Sendable, Equatable {
        case directory
        case file([UInt8])
        /// A secret file: written only when missing; an existing one keeps its contents.
        case secret([UInt8])
    }

    /// Absolute path on the target system (the install root is prefixed when applying).
    public var path: String
    public var content: Content
    public var mode: UInt16
    public var owner: String
    public var group: String
}

/// What applying one entry did (or, with `--dry-run`, would do).
public struct InstallChange: Sendable, Equatable {
    public enum Kind: String, Sendable { case created, updated, unchanged, removed }
    public var path: String
    public var kind: Kind
    /// What differs: content lines (secrets masked), mode or owner.
    public var details: [String]
}

/// Why an install cannot proceed, with the fix.
public struct InstallError: Error, CustomStringConvertible, Equatable {
    public var description: String
}

/// `warden install` / `warden uninstall`: users, directories, units, script, key file and deployment file,
/// written atomically and idempotently under a root (`/` or an image being built).
public struct Installer: Sendable {
    public var root: String
    public var layout: InstallLayout
    let runner: any CommandRunner

    public init(root: String = "/", layout: InstallLayout = InstallLayout(), runner: any CommandRunner = ProcessRunner()) {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        self.layout = layout
        self.runner = runner
    }

    var isLiveSystem: Bool { root == "/" }

    func onTarget(_ path: String) -> String { isLiveSystem ? path : root + path }

    /// Everything install writes, in order (directories before their files).
    public func plan(deployment: Deployment, deploymentText: String, systemd: SystemdVersion, binary: [UInt8]?) -> [InstallEntry] {
        let units = UnitRenderer.render(deployment, systemd: systemd, layout: layout)
        let vllm = deployment.vllm
        let gatewayUser = layout.gatewayUser
        var entries: [InstallEntry] = []
        func directory(_ path: String, _ mode: UInt16, _ owner: String = "root", _ group: String = "root") {
            guard !entries.contains(where: { $0.path == path }) else { return }
            entries.append(InstallEntry(path: path, content: .directory, mode: mode, owner: owner, group: group))
        }
        func file(_ path: String, _ text: String, _ mode: UInt16, group: String = "root") {
            entries.append(InstallEntry(path: path, content: .file(Array(text.utf8)), mode: mode, owner: "root", group: group))
        }
        directory(parent(of: layout.deploymentFile), 0o755)
        file(layout.deploymentFile, deploymentText, 0o644)
        directory(parent(of: vllm.envFile), 0o755)
        entries.append(InstallEntry(path: vllm.envFile, content: .secret(Array(Self.environmentFile(group: vllm.group).utf8)),
                                    mode: 0o640, owner: "root", group: vllm.group))
        directory(parent(of: layout.startScript), 0o755)
        file(layout.startScript, units.startScript, 0o755)
        if let binary {
            directory(parent(of: layout.wardenBinary), 0o755)
            entries.append(InstallEntry(path: layout.wardenBinary, content: .file(binary), mode: 0o755, owner: "root", group: "root"))
        }
        directory(layout.unitDirectory, 0o755)
        file(layout.unitDirectory + "/vllm.service", units.vllmService, 0o644)
        file(layout.unitDirectory + "/warden-gateway.service", units.gatewayService, 0o644)
        directory(deployment.paths.models, 0o755)
        directory(deployment.paths.state, 0o700, vllm.user, vllm.group)
        directory(deployment.paths.cache, 0o700, vllm.user, vllm.group)
        directory(parent(of: deployment.gateway.keyStore), 0o700, gatewayUser, gatewayUser)
        // For the operator to import into Grafana and load into Prometheus; nothing reads them on this host.
        directory(parent(of: parent(of: GrafanaDashboard.path)), 0o755)
        directory(parent(of: GrafanaDashboard.path), 0o755)
        file(GrafanaDashboard.path, GrafanaDashboard.json, 0o644)
        file(AlertRules.path, AlertRules.yaml + "\n", 0o644)
        return entries
    }

    /// A fresh key file with a 256-bit key.
    static func environmentFile(group: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let key = (0..<32).map { _ in
            let byte = UInt8.random(in: 0...255, using: &generator)
            return (byte < 16 ? "0" : "") + String(byte, radix: 16)
        }.joined()
        return """
        # Secrets for vllm.service and warden-gateway.service (mode 0640 root:\(group)), written by warden install.
        # vLLM reads VLLM_API_KEY from here; it never appears on a command line.
        VLLM_API_KEY=\(key)

        """
    }

    /// Creates the service accounts (live system only), then applies every entry.
    public func install(deployment: Deployment, deploymentText: String, systemd: SystemdVersion, binary: [UInt8]?,
                        dryRun: Bool) throws -> [InstallChange] {
        var changes: [InstallChange] = []
        if isLiveSystem {
            changes += try ensureAccounts(deployment: deployment, dryRun: dryRun)
        }
        let owners = try OwnerResolver(root: root)
        for entry in plan(deployment: deployment, deploymentText: deploymentText, systemd: systemd, binary: binary) {
            if entry.path.hasPrefix(layout.unitDirectory + "/"), let setAside = try setAsideForeignUnit(entry.path, dryRun: dryRun) {
                changes.append(setAside)
            }
            changes.append(try apply(entry, owners: owners, dryRun: dryRun, pendingAccounts: dryRun && isLiveSystem))
        }
        let unitsChanged = changes.contains { $0.path.hasSuffix(".service") && $0.kind != .unchanged }
        if isLiveSystem, unitsChanged, !dryRun {
            _ = try runner.run("systemctl", ["daemon-reload"])
        }
        return changes
    }

    /// The services whose files `changes` rewrote: a running one still runs the old configuration until restarted.
    public func servicesToRestart(after changes: [InstallChange], deployment: Deployment) -> [String] {
        let changed = Set(changes.filter { $0.kind == .created || $0.kind == .updated }.map(\.path))
        let shared = [layout.deploymentFile, deployment.vllm.envFile]
        let inputs = [("vllm.service", [layout.unitDirectory + "/vllm.service", layout.startScript] + shared),
                      ("warden-gateway.service", [layout.unitDirectory + "/warden-gateway.service", layout.wardenBinary] + shared)]
        return inputs.filter { _, paths in paths.contains(where: changed.contains) }.map(\.0)
    }

    /// The ones of `services` systemd reports active (live system only).
    public func running(_ services: [String]) -> [String] {
        guard isLiveSystem else { return [] }
        return services.filter { (try? runner.run("systemctl", ["is-active", "--quiet", $0]))?.status == 0 }
    }

    /// Removes what install created (units, start script, binary, monitoring files), keeping models, keys, state and
    /// the deployment file. A unit Warden did not write (the operator's own `vllm.service`) is neither stopped nor removed.
    public func uninstall(dryRun: Bool) throws -> [InstallChange] {
        let names = ["vllm.service", "warden-gateway.service"]
        let units = names.filter { Self.isWardenUnit(onTarget(layout.unitDirectory + "/" + $0)) }
        var changes: [InstallChange] = []
        for name in names where !units.contains(name) && FileManager.default.fileExists(atPath: onTarget(layout.unitDirectory + "/" + name)) {
            changes.append(InstallChange(path: layout.unitDirectory + "/" + name, kind: .unchanged, details: ["not written by Warden: left in place, not stopped"]))
        }
        if isLiveSystem, !dryRun, !units.isEmpty {
            _ = try? runner.run("systemctl", ["disable", "--now"] + units)
        }
        for path in units.map({ layout.unitDirectory + "/" + $0 }) + [layout.startScript, layout.wardenBinary, GrafanaDashboard.path, AlertRules.path] {
            guard FileManager.default.fileExists(atPath: onTarget(path)) else { continue }
            if !dryRun { try FileManager.default.removeItem(atPath: onTarget(path)) }
            changes.append(InstallChange(path: path, kind: .removed, details: []))
        }
        // The operator's own unit that install moved aside takes its name back.
        for name in units {
            let path = layout.unitDirectory + "/" + name, backup = onTarget(path) + ".before-warden"
            var info = stat()
            guard lstat(backup, &info) == 0 else { continue }
            if !dryRun, rename(backup, onTarget(path)) != 0 {
                throw InstallError(description: "cannot move \(backup) back to \(onTarget(path)): \(String(cString: strerror(errno)))")
            }
            changes.append(InstallChange(path: path, kind: .created, details: ["the unit install had moved aside is back; start it with `systemctl start \(name)`"]))
        }
        if isLiveSystem, !dryRun, !changes.isEmpty {
            _ = try runner.run("systemctl", ["daemon-reload"])
        }
        return changes
    }

    /// The header every unit Warden renders starts with: what install may replace and uninstall may remove.
    static let unitMarker = "rendered by `warden unit render` (vLLM Warden"

    /// A regular file whose first lines carry ``unitMarker``.
    static func isWardenUnit(_ path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG, let bytes = FileManager.default.contents(atPath: path) else { return false }
        return String(decoding: bytes.prefix(1024), as: UTF8.self).contains(unitMarker)
    }

    /// Moves a unit Warden did not write (the guide's `vllm.service`, a link, a mask) aside before Warden's takes
    /// its name, so nothing of the operator's is lost; `nil` when the path is free or already Warden's.
    private func setAsideForeignUnit(_ path: String, dryRun: Bool) throws -> InstallChange? {
        let target = onTarget(path)
        var info = stat()
        guard lstat(target, &info) == 0, !Self.isWardenUnit(target) else { return nil }
        var backup = target + ".before-warden"
        if lstat(backup, &info) == 0 { backup += "." + String(Int(Date().timeIntervalSince1970)) }
        if !dryRun, rename(target, backup) != 0 {
            throw InstallError(description: "cannot move \(target), which Warden did not write, aside to \(backup): \(String(cString: strerror(errno)))")
        }
        let shown = isLiveSystem ? backup : String(backup.dropFirst(root.count))
        return InstallChange(path: path, kind: .removed, details: ["not written by Warden: moved aside to \(shown) (nothing of it is lost)"])
    }

    private func ensureAccounts(deployment: Deployment, dryRun: Bool) throws -> [InstallChange] {
        var changes: [InstallChange] = []
        let accounts = [(deployment.vllm.user, deployment.vllm.group, deployment.paths.state), (layout.gatewayUser, layout.gatewayUser, "/var/lib/warden")]
        for (user, group, home) in accounts {
            if getgrnam(group) == nil {
                if !dryRun { try check(runner.run("groupadd", ["--system", group]), "groupadd \(group)") }
                changes.append(InstallChange(path: "group \(group)", kind: .created, details: []))
            }
            if getpwnam(user) == nil {
                if !dryRun {
                    try check(runner.run("useradd", ["--system", "--gid", group, "--home-dir", home, "--no-create-home",
                                                     "--shell", "/usr/sbin/nologin", user]), "useradd \(user)")
                }
                changes.append(InstallChange(path: "user \(user)", kind: .created, details: []))
            }
        }
        return changes
    }

    private func check(_ output: CommandOutput, _ what: String) throws {
        guard output.status == 0 else { throw InstallError(description: "\(what) failed: \(output.combined.trimmed())") }
    }

    private func apply(_ entry: InstallEntry, owners: OwnerResolver, dryRun: Bool, pendingAccounts: Bool) throws -> InstallChange {
        let target = onTarget(entry.path)
        let manager = FileManager.default
        // In a dry run on a live system the accounts may not exist yet: compare names only where ids resolve.
        let uid = try owners.uid(entry.owner, optional: pendingAccounts)
        let gid = try owners.gid(entry.group, optional: pendingAccounts)
        var details: [String] = []
        var existed = false
        var contentChanged = false
        var info = stat()
        if lstat(target, &info) == 0 {
            existed = true
            let mode = UInt16(info.st_mode & 0o7777)
            if mode != entry.mode { details.append("mode \(String(mode, radix: 8)) → \(String(entry.mode, radix: 8))") }
            if let uid, info.st_uid != uid || info.st_gid != gid { details.append("owner → \(entry.owner):\(entry.group)") }
            if case .file(let bytes) = entry.content {
                let current = manager.contents(atPath: target).map { [UInt8]($0) } ?? []
                if current != bytes {
                    contentChanged = true
                    details += Self.describeContentChange(path: entry.path, old: current, new: bytes)
                }
            }
        }
        let kind: InstallChange.Kind = !existed ? .created : (details.isEmpty ? .unchanged : .updated)
        if dryRun || kind == .unchanged { return InstallChange(path: entry.path, kind: kind, details: details) }

        switch entry.content {
        case .directory:
            try manager.createDirectory(atPath: target, withIntermediateDirectories: true)
        case .file(let bytes):
            if !existed || contentChanged { try Self.writeAtomically(bytes, to: target, mode: entry.mode) }
        case .secret(let bytes):
            if !existed { try Self.writeAtomically(bytes, to: target, mode: entry.mode) }
        }
        try Self.setOwnership(target, mode: mode_t(entry.mode), uid: uid, gid: gid, names: "\(entry.owner):\(entry.group)")
        return InstallChange(path: entry.path, kind: kind, details: existed ? details : [])
    }

    /// Sets a path's mode and owner through a descriptor opened without following a link, so a link an account
    /// planted in a directory it may write never turns root's chown onto another file. A link in a directory only
    /// root may write is the operator's own (a models directory on a bigger disk) and is followed.
    public static func setOwnership(_ path: String, mode: mode_t?, uid: uid_t?, gid: gid_t?, names: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw InstallError(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
        let isLink = info.st_mode & S_IFMT == S_IFLNK
        if isLink, !onlyRootWrites(parent(of: path)) {
            throw InstallError(description: "\(path) is a symbolic link in a directory another account may write: Warden does not change "
                               + "ownership through it (it could point anywhere); replace it with a real directory or file and rerun")
        }
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | (isLink ? 0 : O_NOFOLLOW))
        guard descriptor >= 0 else { throw InstallError(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        guard fstat(descriptor, &info) == 0, [S_IFREG, S_IFDIR].contains(info.st_mode & S_IFMT) else {
            throw InstallError(description: "\(path) is neither a file nor a directory: move it aside and rerun")
        }
        if let mode, fchmod(descriptor, mode) != 0 {
            throw InstallError(description: "cannot chmod \(path) to \(String(mode, radix: 8)): \(String(cString: strerror(errno)))")
        }
        if let uid, let gid, fchown(descriptor, uid, gid) != 0 {
            throw InstallError(description: "cannot chown \(path) to \(names): \(String(cString: strerror(errno)))")
        }
    }

    /// A directory owned by root that neither its group nor others may write.
    static func onlyRootWrites(_ directory: String) -> Bool {
        var info = stat()
        return stat(directory, &info) == 0 && info.st_uid == 0 && info.st_mode & 0o022 == 0
    }

    /// Content changes as diff lines; key files and binaries are never printed.
    static func describeContentChange(path: String, old: [UInt8], new: [UInt8]) -> [String] {
        guard let oldText = String(validating: old, as: UTF8.self), let newText = String(validating: new, as: UTF8.self),
              !path.hasSuffix(".env") else {
            return ["contents differ (\(old.count) → \(new.count) bytes)"]
        }
        return LineDiff.render(old: oldText, new: newText)
    }

    /// Write to a temporary file beside the target, fsync, then rename: readers see the old or the new file, never half.
    static func writeAtomically(_ bytes: [UInt8], to path: String, mode: UInt16) throws {
        let temporary = path + ".warden-new"
        // Made afresh, never opened through whatever stands at the name (a link another account left there).
        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(mode))
        guard descriptor >= 0 else { throw InstallError(description: "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, bytes.count - offset) }
            guard written > 0 else {
                close(descriptor)
                unlink(temporary)
                throw InstallError(description: "cannot write \(temporary): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
        fsync(descriptor)
        close(descriptor)
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw InstallError(description: "cannot replace \(path): \(String(cString: strerror(errno)))")
        }
    }
}

func parent(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
    return String(path[..<slash])
}

/// Account names to ids: from `<root>/etc/passwd` and `<root>/etc/group` when installing into an image, else the host's.
struct OwnerResolver {
    private var users: [String: UInt32] = [:]
    private var groups: [String: UInt32] = [:]
    let root: String

    init(root: String) throws {
        self.root = root
        users["root"] = 0
        groups["root"] = 0
        guard root != "/" else { return }
        for (file, isUser) in [("/etc/passwd", true), ("/etc/group", false)] {
            guard let text = try? String(contentsOfFile: root + file, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") {
                let fields = line.split(separator: ":", omittingEmptySubsequences: false)
                guard fields.count >= 3, let id = UInt32(fields[2]) else { continue }
                if isUser { users[String(fields[0])] = id } else { groups[String(fields[0])] = id }
            }
        }
    }

    func uid(_ name: String, optional: Bool) throws -> UInt32? {
        if let id = users[name] { return id }
        if root == "/", let entry = getpwnam(name) { return entry.pointee.pw_uid }
        if optional { return nil }
        throw InstallError(description: "user \(name) does not exist in \(root == "/" ? "this system" : root + "/etc/passwd"); create it (or install with --root /, which does)")
    }

    func gid(_ name: String, optional: Bool) throws -> UInt32? {
        if let id = groups[name] { return id }
        if root == "/", let entry = getgrnam(name) { return entry.pointee.gr_gid }
        if optional { return nil }
        throw InstallError(description: "group \(name) does not exist in \(root == "/" ? "this system" : root + "/etc/group"); create it (or install with --root /, which does)")
    }
}
