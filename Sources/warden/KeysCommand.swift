import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import WardenConfig
import WardenJSON
import WardenGateway
import WardenSystemd

/// `warden keys`: manage the gateway's API keys. The running gateway picks up changes within a second.
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Create, list, update, revoke and rotate gateway API keys (secrets are shown once, stored only as HMACs).",
        subcommands: [Create.self, List.self, Update.self, Revoke.self, Rotate.self]
    )

    static func openStore(_ options: ConfigOptions, access: KeyStore.Access) throws -> KeyStore {
        let deployment = try options.load()
        do {
            let store = try KeyStore(path: deployment.gateway.keyStore, access: access)
            if access != .readOnly { handOverToGatewayUser(deployment.gateway.keyStore) }
            return store
        } catch {
            printError("keys: \(error)")
            throw ExitCode(WardenExit.usage)
        }
    }

    /// Models checked against what the deployment serves (a typo would lock the key out of every model).
    static func checkModels(_ list: String?, options: ConfigOptions, force: Bool) throws -> [String]? {
        guard let list else { return nil }
        let served = try options.load().vllm.servedModelName
        let models = list.split(separator: ",").map { $0.trimmed() }.filter { !$0.isEmpty }
        if !force, let unknown = models.first(where: { $0 != served }) {
            printError("keys: no model '\(unknown)' is served here (vllm.served_model_name is '\(served)'); fix the name, or pass --force for a model loaded later")
            throw ExitCode(WardenExit.usage)
        }
        return models
    }

    static func requireUniqueName(_ name: String, in store: KeyStore, except publicID: String? = nil) throws {
        let keys = try store.list()
        if keys.contains(where: { $0.name == name && $0.publicID != publicID }) {
            printError("keys: a key named '\(name)' exists already (`warden keys list`); names tell keys apart in logs and metrics: choose another")
            throw ExitCode(WardenExit.usage)
        }
        if keys.contains(where: { $0.publicID == name && $0.publicID != publicID }) {
            printError("keys: '\(name)' is another key's id; `warden usage --key` takes an id or a name, so a name must not be an id: choose another")
            throw ExitCode(WardenExit.usage)
        }
    }

    /// A name is shown in tables, logs and metric labels: printable, one line, at most 128 characters.
    static func checkName(_ name: String) throws {
        guard name.unicodeScalars.count <= 128 else { throw ValidationError("--name is \(name.unicodeScalars.count) characters long; give at most 128") }
        if name.firstControlCharacter != nil {
            throw ValidationError("--name holds a control character (a line break, tab or escape): names are shown in tables and logs, so give printable text")
        }
    }

    /// The limit flags of `create` and `update`, in the order their values are passed, with the ranges
    /// `gateway.limits` allows.
    static let limitFlags: [(flag: String, range: ClosedRange<Int>)] = [
        ("--rpm", Deployment.Limits.Range.requestsPerMinute), ("--tpm", Deployment.Limits.Range.tokensPerMinute),
        ("--concurrency", Deployment.Limits.Range.concurrency), ("--burst", Deployment.Limits.Range.burst),
        ("--quota-day", Deployment.Limits.Range.quota), ("--quota-month", Deployment.Limits.Range.quota),
    ]

    static func outOfRange(_ flag: String, _ value: String, _ range: ClosedRange<Int>, orDefault: Bool = false) -> ValidationError {
        ValidationError("\(flag) \(value) is out of range: give a whole number from \(range.lowerBound) to \(range.upperBound)"
                        + (orDefault ? ", or default" : "") + " (the range gateway.limits allows)")
    }

    /// An expiry given on the command line: a date or duration, in the future.
    static func checkExpiry(_ text: String) throws -> Int64 {
        guard let when = parseExpiry(text) else {
            throw ValidationError("--expires '\(text)' must be a date like 2027-01-31 or a duration like 90d or 12h, ending by 9999-12-31")
        }
        guard when > Int64(Date().timeIntervalSince1970) else {
            throw ValidationError("--expires '\(text)' is in the past: the key would never work; give a later date or a duration like 90d")
        }
        return when
    }

    /// Run as root, the store must stay readable by the gateway's account.
    static func handOverToGatewayUser(_ path: String) {
        guard getuid() == 0, let account = getpwnam("warden") else { return }
        let directory = parentDirectory(of: path)
        // Through descriptors, never through a link: the directory is the gateway account's, which could plant one.
        for file in [directory, path, path + "-wal", path + "-shm", KeyStore.secretPath(for: path)] where FileManager.default.fileExists(atPath: file) {
            do {
                try Installer.setOwnership(file, mode: nil, uid: account.pointee.pw_uid, gid: account.pointee.pw_gid, names: "warden:warden")
            } catch {
                printError("keys: \(error)")
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key and print its secret (once).")
        @OptionGroup var options: ConfigOptions
        @Option(help: "A name for the key (who or what uses it).") var name: String
        @Option(help: ArgumentHelp("Expiry: a date (2027-01-31), or a duration from now (90d, 12h).", valueName: "when")) var expires: String?
        @Option(help: ArgumentHelp("Models this key may use (comma-separated; default: all).", valueName: "m,…")) var models: String?
        @Option(help: "Requests per minute for this key (default: gateway.limits).") var rpm: Int?
        @Option(help: "Tokens per minute for this key (default: gateway.limits).") var tpm: Int?
        @Option(help: "Requests in flight for this key (default: gateway.limits).") var concurrency: Int?
        @Option(help: "Requests admitted at once before the per-minute rate applies (default: gateway.limits.burst, at most the key's rpm).")
        var burst: Int?
        @Option(help: "Tokens this key may be charged per calendar day (default: gateway.limits.tokens_per_day).") var quotaDay: Int?
        @Option(help: "Tokens this key may be charged per calendar month (default: gateway.limits.tokens_per_month).") var quotaMonth: Int?
        @Flag(help: "Allow --models naming models this deployment does not serve (e.g. a LoRA adapter loaded later).") var force = false

        func validate() throws {
            for ((flag, range), value) in zip(KeysCommand.limitFlags, [rpm, tpm, concurrency, burst, quotaDay, quotaMonth]) {
                if let value, !range.contains(value) { throw KeysCommand.outOfRange(flag, "\(value)", range) }
            }
            if let expires { _ = try KeysCommand.checkExpiry(expires) }
            guard !name.trimmed().isEmpty else { throw ValidationError("--name must not be empty: name the person or service the key is for") }
            try KeysCommand.checkName(name.trimmed())
        }

        func run() async throws {
            let modelList = try KeysCommand.checkModels(models, options: options, force: force) ?? []
            let store = try KeysCommand.openStore(options, access: .create)
            try KeysCommand.requireUniqueName(name.trimmed(), in: store)
            let (token, record) = try store.create(name: name.trimmed(), expires: expires.flatMap { parseExpiry($0) }, models: modelList,
                                                   requestsPerMinute: rpm, tokensPerMinute: tpm, concurrency: concurrency, burst: burst,
                                                   tokensPerDay: quotaDay, tokensPerMonth: quotaMonth)
            print(token.text)
            printError("created key \(record.publicID) (\(name)); the secret above is shown only once. Use it as `Authorization: Bearer <key>`.")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (never their secrets); expiries in UTC.")
        @OptionGroup var options: ConfigOptions
        @Option(help: "Output format: text (a table) or json (one object a line).") var format: OutputFormat = .text

        func run() async throws {
            let now = Int64(Date().timeIntervalSince1970)
            let storePath = try options.load().gateway.keyStore
            guard access(storePath, F_OK) == 0 || errno != ENOENT else {
                if format == .text { printError("no keys yet: create one with `warden keys create --name NAME`") }
                return
            }
            let records = try KeysCommand.openStore(options, access: .readOnly).list()
            if format == .json {
                for record in records { print(KeysCommand.json(record, now: now).serialized) }
                return
            }
            print("ID            STATUS   NAME                 CREATED           EXPIRES           MODELS          RPM    BURST  TPM       CONC")
            for record in records {
                print([record.publicID.padded(13), KeysCommand.status(record, now: now).padded(8), record.name.padded(20),
                       minute(record.created).padded(17), (record.expires.map(minute) ?? "never").padded(17),
                       (record.models.isEmpty ? "all" : record.models.joined(separator: ",")).padded(15),
                       (record.requestsPerMinute.map(String.init) ?? "-").padded(6), (record.burst.map(String.init) ?? "-").padded(6),
                       (record.tokensPerMinute.map(String.init) ?? "-").padded(9),
                       record.concurrency.map(String.init) ?? "-"].joined(separator: " "))
            }
        }
    }

    static func status(_ record: KeyRecord, now: Int64) -> String {
        record.revoked != nil ? "revoked" : (record.isUsable(at: now) ? "active" : "expired")
    }

    static func json(_ record: KeyRecord, now: Int64) -> JSONValue {
        func number<Value: BinaryInteger>(_ value: Value?) -> JSONValue { value.map { .number(String($0)) } ?? .null }
        return .object([
            ("burst", number(record.burst)), ("concurrency", number(record.concurrency)), ("created", number(record.created)),
            ("expires", number(record.expires)), ("id", .string(record.publicID)), ("models", .array(record.models.map(JSONValue.string))),
            ("name", .string(record.name)), ("quota_day", number(record.tokensPerDay)), ("quota_month", number(record.tokensPerMonth)),
            ("revoked", number(record.revoked)), ("rpm", number(record.requestsPerMinute)),
            ("status", .string(status(record, now: now))), ("tpm", number(record.tokensPerMinute)), ("usable", .bool(record.isUsable(at: now))),
        ])
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a key's name, expiry, models or limits; the running gateway applies it within a second.",
            discussion: "Limits take a number, or `default` for gateway.limits; --expires takes a date, a duration, or `never`. The secret and a revocation never change.")
        @OptionGroup var options: ConfigOptions
        @Argument(help: "The key's id (from `warden keys list`).") var id: String
        @Option(help: "A new name.") var name: String?
        @Option(help: ArgumentHelp("Expiry: a date (2027-01-31), a duration from now (90d), or never.", valueName: "when")) var expires: String?
        @Option(help: ArgumentHelp("Models this key may use (comma-separated; empty: all).", valueName: "m,…")) var models: String?
        @Option(help: ArgumentHelp("Requests per minute, or default.", valueName: "n")) var rpm: String?
        @Option(help: ArgumentHelp("Tokens per minute, or default.", valueName: "n")) var tpm: String?
        @Option(help: ArgumentHelp("Requests in flight, or default.", valueName: "n")) var concurrency: String?
        @Option(help: ArgumentHelp("Requests admitted at once, or default.", valueName: "n")) var burst: String?
        @Option(help: ArgumentHelp("Tokens per day (quota), or default.", valueName: "n")) var quotaDay: String?
        @Option(help: ArgumentHelp("Tokens per calendar month (quota), or default.", valueName: "n")) var quotaMonth: String?
        @Flag(help: "Allow --models naming models this deployment does not serve.") var force = false

        func validate() throws {
            if let name {
                guard !name.trimmed().isEmpty else { throw ValidationError("--name must not be empty") }
                try KeysCommand.checkName(name.trimmed())
            }
            if let expires, expires != "never" { _ = try KeysCommand.checkExpiry(expires) }
            for ((flag, _), value) in zip(KeysCommand.limitFlags, [rpm, tpm, concurrency, burst, quotaDay, quotaMonth]) {
                _ = try Self.limit(flag, value)
            }
            guard [name, expires, models, rpm, tpm, concurrency, burst, quotaDay, quotaMonth].contains(where: { $0 != nil }) else {
                throw ValidationError("nothing to change: give at least one of --name, --expires, --models, --rpm, --tpm, --concurrency, --burst, --quota-day, --quota-month")
            }
        }

        /// `nil`: unchanged; `.some(nil)`: back to the default; `.some(n)`: n within the flag's range.
        static func limit(_ flag: String, _ value: String?) throws -> Int?? {
            guard let value else { return nil }
            if value == "default" { return .some(nil) }
            let range = KeysCommand.limitFlags.first { $0.flag == flag }?.range ?? 1...Int.max
            guard let number = Int(value), range.contains(number) else { throw KeysCommand.outOfRange(flag, "'\(value)'", range, orDefault: true) }
            return .some(number)
        }

        func run() async throws {
            var changes = KeyStore.Changes()
            changes.models = try KeysCommand.checkModels(models, options: options, force: force)
            // Opened for writing: a store from before quotas gets their columns.
            let store = try KeysCommand.openStore(options, access: .create)
            if let name {
                try KeysCommand.requireUniqueName(name.trimmed(), in: store, except: id)
                changes.name = name.trimmed()
            }
            if let expires { changes.expires = .some(expires == "never" ? nil : try KeysCommand.checkExpiry(expires)) }
            changes.requestsPerMinute = try Self.limit("--rpm", rpm)
            changes.tokensPerMinute = try Self.limit("--tpm", tpm)
            changes.concurrency = try Self.limit("--concurrency", concurrency)
            changes.burst = try Self.limit("--burst", burst)
            changes.tokensPerDay = try Self.limit("--quota-day", quotaDay)
            changes.tokensPerMonth = try Self.limit("--quota-month", quotaMonth)
            do {
                let record = try store.update(publicID: id, changes)
                print("updated \(id): \(KeysCommand.json(record, now: Int64(Date().timeIntervalSince1970)).serialized)")
            } catch let error as GatewaySetupError {
                printError("keys: \(error)")
                throw ExitCode(WardenExit.usage)
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key; the running gateway refuses it within a second.")
        @OptionGroup var options: ConfigOptions
        @Argument(help: "The key's id (from `warden keys list`).") var id: String

        func run() async throws {
            do {
                try KeysCommand.openStore(options, access: .readWrite).revoke(publicID: id)
                print("revoked \(id)")
            } catch let error as GatewaySetupError {
                printError("keys: \(error)")
                throw ExitCode(WardenExit.usage)
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give a key a new secret (printed once); the old one stops working.")
        @OptionGroup var options: ConfigOptions
        @Argument(help: "The key's id (from `warden keys list`).") var id: String

        func run() async throws {
            do {
                print(try KeysCommand.openStore(options, access: .readWrite).rotate(publicID: id).text)
            } catch let error as GatewaySetupError {
                printError("keys: \(error)")
                throw ExitCode(WardenExit.usage)
            }
        }
    }
}

/// `2027-01-31` (midnight UTC) or a duration from now (`90d`, `12h`, `30m`), as seconds since the epoch; `nil`
/// for anything else, and for a duration that ends after 9999-12-31 (the last date the other form can write).
func parseExpiry(_ text: String, now: Int64 = Int64(Date().timeIntervalSince1970)) -> Int64? {
    if let unit = text.last, let amount = Int64(text.dropLast()), amount > 0, let seconds = ["d": Int64(86_400), "h": 3600, "m": 60][unit] {
        let (span, overflow) = amount.multipliedReportingOverflow(by: seconds)
        let latest: Int64 = 253_402_300_799  // 9999-12-31T23:59:59Z
        return !overflow && span <= latest - now ? now + span : nil
    }
    let parts = text.split(separator: "-", omittingEmptySubsequences: false)
    guard parts.count == 3, parts.map(\.count) == [4, 2, 2], let year = Int32(parts[0]), let month = Int32(parts[1]), let dayOfMonth = Int32(parts[2])
    else { return nil }
    var fields = tm()
    fields.tm_year = year - 1900
    fields.tm_mon = month - 1
    fields.tm_mday = dayOfMonth
    let seconds = Int64(timegm(&fields))
    // timegm normalises 2027-02-31 into March: only a date that reads back the same is a date.
    return day(seconds) == text ? seconds : nil
}

/// `YYYY-MM-DD HH:MM` in UTC.
private func minute(_ seconds: Int64) -> String {
    var time = time_t(seconds)
    var fields = tm()
    gmtime_r(&time, &fields)
    let hour = fields.tm_hour < 10 ? "0\(fields.tm_hour)" : "\(fields.tm_hour)"
    let minute = fields.tm_min < 10 ? "0\(fields.tm_min)" : "\(fields.tm_min)"
    return "\(day(seconds)) \(hour):\(minute)"
}

/// `YYYY-MM-DD` in UTC.
private func day(_ seconds: Int64) -> String {
    var time = time_t(seconds)
    var fields = tm()
    gmtime_r(&time, &fields)
    func padded(_ value: Int32, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
    return "\(padded(fields.tm_year + 1900, 4))-\(padded(fields.tm_mon + 1, 2))-\(padded(fields.tm_mday, 2))"
}

extension String {
    func padded(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
