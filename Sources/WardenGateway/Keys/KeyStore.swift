import Crypto
import WardenConfig
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// The key store: an SQLite file holding only an HMAC-SHA256 of each secret, keyed by a per-install secret kept
/// in a 0600 file next to it. Read by the gateway, written by `warden keys`. Sendable because the connection is
/// opened with `SQLITE_OPEN_FULLMUTEX` (SQLite serialises every call) and nothing else in it changes.
public final class KeyStore: @unchecked Sendable {
    public let path: String
    let database: SQLiteDatabase
    /// The per-install secret; not read by a read-only opening, which lists keys and usage but verifies nothing
    /// (so an account may read the store without the secret).
    private let hmacKey: SymmetricKey?
    /// Columns added after the first release that this store has (`burst`, `quota_day`, `quota_month`).
    private let laterColumns: Set<String>
    /// Whether the ledger's tables exist: a read-only opening of a store no gateway has run on finds none.
    let hasLedger: Bool
    private static let laterColumnNames = ["burst", "quota_day", "quota_month"]

    /// The per-install HMAC secret lives beside the database.
    public static func secretPath(for path: String) -> String {
        parentDirectory(of: path) + "/hmac.secret"
    }

    /// How a command uses the store.
    public enum Access: Sendable {
        /// Creates the store when missing and upgrades an older one (`warden keys create` and `update`).
        case create
        /// Reads and writes an existing store (the gateway's ledger, `revoke`, `rotate`).
        case readWrite
        /// Only reads (`keys list`, `usage`, `status`): works for an account that may read the files but not write them.
        case readOnly
    }

    /// Opens (and with `create`, initialises) the store.
    public convenience init(path: String, create: Bool) throws {
        try self.init(path: path, access: create ? .create : .readWrite)
    }

    /// Opens the store for `access`. Problems are named with their way out: a file this account may not read or
    /// write is a permission problem (run as root or as the gateway's user), never advice to replace the store.
    public init(path: String, access mode: Access) throws {
        self.path = path
        let create = mode == .create
        let isNew = access(path, F_OK) != 0
        let directory = parentDirectory(of: path)
        if create {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } else if access(path, F_OK) != 0 {
            if errno == ENOENT { throw GatewaySetupError("no key store at \(path): create a key first with `warden keys create --name NAME`") }
            throw GatewaySetupError("cannot reach the key store at \(path): \(String(cString: strerror(errno))); run as root or as the gateway's user")
        }
        try Self.checkPermissions(path, writing: mode != .readOnly)
        let database = try Self.openDatabase(path, readOnly: mode == .readOnly)
        self.database = database
        // Every table of another program's database, none of them Warden's: never written into.
        let tables = Set(try Self.read(path, immutable: database.isImmutable) { try database.query("SELECT name FROM sqlite_master WHERE type = 'table'").compactMap { $0[0].text } })
        if !tables.isEmpty, !tables.contains("keys") {
            throw GatewaySetupError("\(path) is an SQLite database of something else (tables: \(tables.sorted().prefix(5).joined(separator: ", "))): "
                                    + "give gateway.key_store a file of its own")
        }
        if !create, !tables.contains("keys") {
            throw GatewaySetupError("\(path) holds no keys table: it is not a key store; check gateway.key_store, or create a key with `warden keys create`")
        }
        // Stores written by an older release lack later columns: the writer adds them, a reader reads none.
        var columns = Set(try Self.read(path, immutable: database.isImmutable) { try database.query("PRAGMA table_info(keys)").compactMap { $0[1].text } })
        if tables.contains("keys") {
            guard columns.contains("public_id"), columns.contains("secret_hash") else {
                throw GatewaySetupError("\(path) has a keys table that is not Warden's (no public_id or secret_hash): give gateway.key_store a file of its own")
            }
        }
        hmacKey = mode == .readOnly ? nil : SymmetricKey(data: try Self.loadSecret(at: Self.secretPath(for: path), create: create))
        if create {
            // Only a file made now: modes an operator chose for an existing store stay.
            if isNew { chmod(path, 0o600) }
            try Self.read(path) {
                try database.execute("""
                    PRAGMA journal_mode=WAL;
                    CREATE TABLE IF NOT EXISTS keys (
                        public_id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash BLOB NOT NULL,
                        created INTEGER NOT NULL, expires INTEGER, revoked INTEGER, models TEXT NOT NULL DEFAULT '',
                        rpm INTEGER, tpm INTEGER, concurrency INTEGER, burst INTEGER, quota_day INTEGER, quota_month INTEGER);
                    """)
                if columns.isEmpty { columns = Set(try database.query("PRAGMA table_info(keys)").compactMap { $0[1].text }) }
                for column in Self.laterColumnNames where !columns.contains(column) {
                    try database.execute("ALTER TABLE keys ADD COLUMN \(column) INTEGER;")
                }
            }
        }
        laterColumns = create ? Set(Self.laterColumnNames) : columns
        hasLedger = mode != .readOnly || tables.contains("usage")
        if mode != .readOnly { try Self.read(path) { try createLedgerTables() } }
    }

    /// The store's files as this account may use them: every file a writer touches must be writable (SQLite
    /// would open a read-only file read-only and fail at the first write, after the command had begun).
    private static func checkPermissions(_ path: String, writing: Bool) throws {
        // The secret is only ever read, and only by writers; a writer also makes the WAL's companion files beside the store.
        var files = [(path, writing ? R_OK | W_OK : R_OK)]
        if writing { files.append((secretPath(for: path), R_OK)) }
        if writing { files += [(parentDirectory(of: path), W_OK), (path + "-wal", R_OK | W_OK), (path + "-shm", R_OK | W_OK)] }
        for (file, needed) in files where access(file, F_OK) == 0 && access(file, needed) != 0 {
            throw GatewaySetupError("cannot \(needed & W_OK != 0 ? "write" : "read") \(file): \(String(cString: strerror(errno))); "
                                    + "run as root or as the gateway's user (the account `warden install` made owns the store)")
        }
    }

    /// Opens the database file, naming it and the way out when SQLite cannot read it.
    private static func openDatabase(_ path: String, readOnly: Bool) throws -> SQLiteDatabase {
        // A read-only account cannot make a WAL store's shared-memory file: when no writer has the store open (no
        // `-wal` file), the file is read as it stands, as SQLite allows for a file nobody changes.
        let immutable = readOnly && isWAL(path) && access(path + "-wal", F_OK) != 0 && access(parentDirectory(of: path), W_OK) != 0
        return try read(path, immutable: immutable) { try SQLiteDatabase(path: path, readOnly: readOnly, immutable: immutable) }
    }

    /// Whether the file's header says WAL mode (bytes 18 and 19 are 2); a rollback-journal store needs no
    /// shared memory to be read.
    private static func isWAL(_ path: String) -> Bool {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var header = [UInt8](repeating: 0, count: 20)
        return header.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, 20, 0) } == 20 && header[18] == 2 && header[19] == 2
    }

    /// Runs a read of the file, turning SQLite's bare complaint into one that names the file and what to do:
    /// only a damaged file is worth restoring.
    private static func read<T>(_ path: String, immutable: Bool = false, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as SQLiteError {
            switch error.kind {
            case .damaged where immutable:
                // Read without locks: a writer that started meanwhile can make a sound file look damaged.
                throw GatewaySetupError("the key store at \(path) changed while it was read (\(error)); try again")
            case .damaged:
                throw GatewaySetupError("cannot read the key store at \(path) (\(error)): restore it from backup, or move it aside and create keys anew")
            case .permission:
                throw GatewaySetupError("cannot use the key store at \(path) (\(error)): this account may not read or write its files or its directory; "
                                        + "run as root or as the gateway's user")
            case .moved:
                throw GatewaySetupError("the key store at \(path) was replaced or moved while open (\(error)); restart whatever uses it")
            case .busy:
                throw GatewaySetupError("the key store at \(path) is locked by another process (\(error)); try again in a moment")
            case .full:
                throw GatewaySetupError("the disk holding the key store at \(path) is full (\(error)); free space and try again")
            case .other:
                throw GatewaySetupError("cannot use the key store at \(path) (\(error))")
            }
        }
    }

    private static func loadSecret(at path: String, create: Bool) throws -> [UInt8] {
        if let data = FileManager.default.contents(atPath: path) {
            guard data.count >= 32 else { throw GatewaySetupError("\(path) is too short to be a key-store secret; restore it from backup") }
            return [UInt8](data)
        }
        if access(path, F_OK) == 0 || errno != ENOENT {
            throw GatewaySetupError("cannot read \(path): \(String(cString: strerror(errno))); run as root or as the gateway's user")
        }
        guard create else { throw GatewaySetupError("\(path) is missing: without it no stored key can be verified") }
        let secret = (0..<32).map { _ in UInt8.random(in: 0...255) }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw GatewaySetupError("cannot create \(path): \(String(cString: strerror(errno)))") }
        _ = secret.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        fsync(descriptor)
        close(descriptor)
        return secret
    }

    func hash(secret: String) throws -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(secret.utf8), using: try secretKey()))
    }

    private func secretKey() throws -> SymmetricKey {
        guard let hmacKey else { throw GatewaySetupError("the key store at \(path) was opened read-only: it cannot verify or issue secrets") }
        return hmacKey
    }

    /// A key-table snapshot for the gateway: records plus the means to verify secrets.
    public func loadTable() throws -> KeyTable {
        KeyTable(records: try list(), hasher: KeyHasher(key: try secretKey()))
    }

    /// Changes whenever another connection (e.g. `warden keys`) commits; the gateway polls it to reload.
    public func dataVersion() throws -> Int64 {
        try database.query("PRAGMA data_version").first?.first?.integer ?? 0
    }

    /// Creates a key and returns its full token, which is never stored and cannot be shown again.
    public func create(name: String, expires: Int64? = nil, models: [String] = [], requestsPerMinute: Int? = nil,
                       tokensPerMinute: Int? = nil, concurrency: Int? = nil, burst: Int? = nil, tokensPerDay: Int? = nil, tokensPerMonth: Int? = nil,
                       now: Int64 = Int64(Date().timeIntervalSince1970)) throws -> (APIKeyToken, KeyRecord) {
        let token = APIKeyToken.generate()
        let record = KeyRecord(publicID: token.publicID, name: name, secretHash: try hash(secret: token.secret), created: now, expires: expires,
                               revoked: nil, models: models, requestsPerMinute: requestsPerMinute, tokensPerMinute: tokensPerMinute,
                               concurrency: concurrency, burst: burst, tokensPerDay: tokensPerDay, tokensPerMonth: tokensPerMonth)
        try database.query("INSERT INTO keys (public_id, name, secret_hash, created, expires, revoked, models, rpm, tpm, concurrency, burst, quota_day, quota_month) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", [
            .text(record.publicID), .text(name), .blob(record.secretHash), .integer(now), expires.map { .integer($0) } ?? .null, .null,
            .text(models.joined(separator: ",")), optional(requestsPerMinute), optional(tokensPerMinute), optional(concurrency), optional(burst),
            optional(tokensPerDay), optional(tokensPerMonth),
        ])
        return (token, record)
    }

    public func list() throws -> [KeyRecord] {
        let later = Self.laterColumnNames.map { laterColumns.contains($0) ? $0 : "NULL" }.joined(separator: ", ")
        return try database.query("SELECT public_id, name, secret_hash, created, expires, revoked, models, rpm, tpm, concurrency, \(later) FROM keys ORDER BY created, public_id").map { row in
            KeyRecord(publicID: row[0].text ?? "", name: row[1].text ?? "", secretHash: row[2].blob ?? [], created: row[3].integer ?? 0,
                      expires: row[4].integer, revoked: row[5].integer,
                      models: (row[6].text ?? "").split(separator: ",").map(String.init),
                      requestsPerMinute: Self.limit(row[7].integer, Deployment.Limits.Range.requestsPerMinute),
                      tokensPerMinute: Self.limit(row[8].integer, Deployment.Limits.Range.tokensPerMinute),
                      concurrency: Self.limit(row[9].integer, Deployment.Limits.Range.concurrency),
                      burst: Self.limit(row[10].integer, Deployment.Limits.Range.burst),
                      tokensPerDay: Self.limit(row[11].integer, Deployment.Limits.Range.quota),
                      tokensPerMonth: Self.limit(row[12].integer, Deployment.Limits.Range.quota))
        }
    }

    /// A key's limit as stored, brought into the range `warden keys` enforces: a store edited by hand (or by a
    /// version that checked less) must not hand the gateway a value its arithmetic overflows on.
    private static func limit(_ stored: Int64?, _ range: ClosedRange<Int>) -> Int? {
        stored.map { min(max(Int(clamping: $0), range.lowerBound), range.upperBound) }
    }

    /// What `warden keys update` may change; `nil` leaves a field as it is.
    public struct Changes: Sendable, Equatable {
        public var name: String?
        /// `.some(nil)` removes the expiry.
        public var expires: Int64??
        public var models: [String]?
        /// For each limit, `.some(nil)` returns the key to the gateway's default.
        public var requestsPerMinute: Int??
        public var tokensPerMinute: Int??
        public var concurrency: Int??
        public var burst: Int??
        /// Token quotas per day and per month (`.some(nil)`: the `gateway.limits` default).
        public var tokensPerDay: Int??
        public var tokensPerMonth: Int??
        public init() {}
    }

    /// Changes a key's name, expiry, models or limits; the running gateway applies them within a second. The
    /// secret and the revocation are never touched.
    @discardableResult
    public func update(publicID: String, _ changes: Changes) throws -> KeyRecord {
        try requireKey(publicID)
        func set(_ column: String, _ value: SQLiteDatabase.Value) throws {
            try database.query("UPDATE keys SET \(column) = ? WHERE public_id = ?", [value, .text(publicID)])
        }
        if let name = changes.name { try set("name", .text(name)) }
        if let expires = changes.expires { try set("expires", expires.map { .integer($0) } ?? .null) }
        if let models = changes.models { try set("models", .text(models.joined(separator: ","))) }
        if let value = changes.requestsPerMinute { try set("rpm", optional(value)) }
        if let value = changes.tokensPerMinute { try set("tpm", optional(value)) }
        if let value = changes.concurrency { try set("concurrency", optional(value)) }
        if let value = changes.burst {
            guard laterColumns.contains("burst") else { throw GatewaySetupError("this key store predates per-key bursts; run `warden keys create` once to upgrade it") }
            try set("burst", optional(value))
        }
        if let value = changes.tokensPerDay { try setQuota(publicID: publicID, period: .day, tokens: value) }
        if let value = changes.tokensPerMonth { try setQuota(publicID: publicID, period: .month, tokens: value) }
        return try list().first { $0.publicID == publicID }!
    }

    /// Sets a key's token quota for one period (`nil`: back to the `gateway.limits` default); the running gateway
    /// applies it within a second. Needs a store opened with `create: true` (which adds the quota columns).
    public func setQuota(publicID: String, period: QuotaCalendar.Period, tokens: Int?) throws {
        try requireKey(publicID)
        guard laterColumns.contains("quota_\(period.rawValue)") else {
            throw GatewaySetupError("this key store predates quotas; open it for writing (`warden keys create` or `warden keys update`) to add them")
        }
        try database.query("UPDATE keys SET quota_\(period.rawValue) = ? WHERE public_id = ?", [optional(tokens), .text(publicID)])
    }

    public func revoke(publicID: String, now: Int64 = Int64(Date().timeIntervalSince1970)) throws {
        try requireKey(publicID)
        try database.query("UPDATE keys SET revoked = ? WHERE public_id = ? AND revoked IS NULL", [.integer(now), .text(publicID)])
    }

    /// Gives the key a new secret (same id, name and limits); the old secret stops working at once. A revoked key
    /// stays revoked: rotating it is refused, so a rotation can never bring a revoked key back.
    public func rotate(publicID: String) throws -> APIKeyToken {
        try requireKey(publicID)
        if try !database.query("SELECT 1 FROM keys WHERE public_id = ? AND revoked IS NOT NULL", [.text(publicID)]).isEmpty {
            throw GatewaySetupError("key \(publicID) is revoked; a revoked key cannot be rotated back into use: create a new key with `warden keys create`")
        }
        let token = APIKeyToken(publicID: publicID, secret: randomHex(bytes: 32))
        try database.query("UPDATE keys SET secret_hash = ? WHERE public_id = ? AND revoked IS NULL", [.blob(try hash(secret: token.secret)), .text(publicID)])
        return token
    }

    private func requireKey(_ publicID: String) throws {
        guard try !database.query("SELECT 1 FROM keys WHERE public_id = ?", [.text(publicID)]).isEmpty else {
            throw GatewaySetupError("no key with id \(publicID); `warden keys list` shows the ids")
        }
    }

    private func optional(_ value: Int?) -> SQLiteDatabase.Value { value.map { .integer(Int64($0)) } ?? .null }
}

/// Computes secret HMACs for lookups; shared read-only by every connection. The keyed state (both padded key
/// blocks already hashed) is built once per key store and copied per lookup (the digests are copy-on-write).
public struct KeyHasher: Sendable {
    private let keyed: HMAC<SHA256>

    init(key: SymmetricKey) {
        keyed = HMAC(key: key)
    }

    func hash(_ secret: Substring) -> [UInt8] {
        var mac = keyed
        var secret = secret
        secret.withUTF8 { mac.update(data: UnsafeRawBufferPointer($0)) }
        return Array(mac.finalize())
    }
}

/// A setup problem an operator must fix (missing store, unreadable secret, unknown id).
public struct GatewaySetupError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
