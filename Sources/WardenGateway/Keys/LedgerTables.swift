/// The usage ledger and the persisted ban table, in the key store's SQLite file. The gateway writes them on the
/// same connection it watches for key changes, so its own writes never look like `warden keys` changing the keys.
extension KeyStore {
    func createLedgerTables() throws {
        let existing = try database.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('usage', 'bans')")
        guard existing.count < 2 else { return }
        try database.execute("""
            CREATE TABLE IF NOT EXISTS usage (
                key TEXT NOT NULL, model TEXT NOT NULL, route TEXT NOT NULL, hour INTEGER NOT NULL, outcome TEXT NOT NULL,
                requests INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, charged_tokens INTEGER NOT NULL,
                PRIMARY KEY (key, model, route, hour, outcome)) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS usage_by_hour ON usage (hour);
            CREATE TABLE IF NOT EXISTS bans (
                high INTEGER NOT NULL, low INTEGER NOT NULL, ipv4 INTEGER NOT NULL, until INTEGER NOT NULL, bans INTEGER NOT NULL,
                PRIMARY KEY (high, low, ipv4));
            """)
    }

    /// Adds a batch of counts to the ledger in one transaction.
    public func addUsage(_ cells: [UsageCell: UsageCounts]) throws {
        guard !cells.isEmpty else { return }
        try transaction {
            for (cell, counts) in cells {
                try database.query("""
                    INSERT INTO usage VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (key, model, route, hour, outcome) DO UPDATE SET
                    requests = requests + excluded.requests, prompt_tokens = prompt_tokens + excluded.prompt_tokens,
                    completion_tokens = completion_tokens + excluded.completion_tokens, charged_tokens = charged_tokens + excluded.charged_tokens
                    """, [.text(cell.key), .text(cell.model), .text(cell.route), .integer(cell.hour), .text(cell.outcome),
                          .integer(Int64(counts.requests)), .integer(Int64(counts.promptTokens)), .integer(Int64(counts.completionTokens)),
                          .integer(Int64(counts.chargedTokens))])
            }
        }
    }

    /// Deletes rows before `deleteBefore` and merges the hours before `hourlyBefore` into their UTC days.
    func compactUsage(hourlyBefore: Int64, deleteBefore: Int64) throws {
        let dayStart = hourlyBefore - hourlyBefore % 86_400
        try transaction {
            try database.query("DELETE FROM usage WHERE hour < ?", [.integer(deleteBefore)])
            try database.execute("""
                CREATE TEMP TABLE IF NOT EXISTS compacted AS SELECT * FROM usage WHERE 0;
                DELETE FROM temp.compacted;
                """)
            try database.query("""
                INSERT INTO temp.compacted SELECT key, model, route, hour - hour % 86400, outcome, SUM(requests), SUM(prompt_tokens),
                SUM(completion_tokens), SUM(charged_tokens) FROM usage WHERE hour < ? AND hour % 86400 != 0 GROUP BY 1, 2, 3, 4, 5
                """, [.integer(dayStart)])
            try database.query("DELETE FROM usage WHERE hour < ? AND hour % 86400 != 0", [.integer(dayStart)])
            try database.execute("""
                INSERT INTO usage SELECT * FROM temp.compacted WHERE 1 ON CONFLICT (key, model, route, hour, outcome) DO UPDATE SET
                requests = requests + excluded.requests, prompt_tokens = prompt_tokens + excluded.prompt_tokens,
                completion_tokens = completion_tokens + excluded.completion_tokens, charged_tokens = charged_tokens + excluded.charged_tokens;
                DELETE FROM temp.compacted;
                """)
        }
    }

    /// Ledger rows from `since` on (seconds since the epoch), for one key or all.
    public func usage(since: Int64, key: String? = nil) throws -> [(UsageCell, UsageCounts)] {
        guard hasLedger else { return [] }
        let filter = key == nil ? "" : " AND key = ?"
        return try database.query("""
            SELECT key, model, route, hour, outcome, requests, prompt_tokens, completion_tokens, charged_tokens FROM usage
            WHERE hour >= ?\(filter) ORDER BY hour, key, model, route, outcome
            """, [.integer(since)] + (key.map { [.text($0)] } ?? [])).map { row in
            (UsageCell(key: row[0].text ?? "", model: row[1].text ?? "", route: row[2].text ?? "", hour: row[3].integer ?? 0, outcome: row[4].text ?? ""),
             UsageCounts(requests: Int(row[5].integer ?? 0), promptTokens: Int(row[6].integer ?? 0),
                         completionTokens: Int(row[7].integer ?? 0), chargedTokens: Int(row[8].integer ?? 0)))
        }
    }

    /// Tokens charged per key from `since` on: what quotas start from after a restart.
    func chargedTokens(since: Int64) throws -> [String: Int] {
        var charged: [String: Int] = [:]
        for row in try database.query("SELECT key, SUM(charged_tokens) FROM usage WHERE hour >= ? GROUP BY key", [.integer(since)]) {
            charged[row[0].text ?? ""] = Int(row[1].integer ?? 0)
        }
        return charged
    }

    /// Replaces the persisted bans.
    func saveBans(_ bans: [StoredBan]) throws {
        try transaction {
            try database.execute("DELETE FROM bans;")
            for ban in bans {
                try database.query("INSERT OR REPLACE INTO bans VALUES (?,?,?,?,?)", [
                    .integer(Int64(bitPattern: ban.high)), .integer(Int64(bitPattern: ban.low)), .integer(ban.isIPv4 ? 1 : 0),
                    .integer(ban.until), .integer(Int64(ban.bans)),
                ])
            }
        }
    }

    /// The persisted bans still running at `now` (seconds since the epoch).
    func loadBans(now: Int64) throws -> [StoredBan] {
        try database.query("SELECT high, low, ipv4, until, bans FROM bans WHERE until > ?", [.integer(now)]).map { row in
            StoredBan(high: UInt64(bitPattern: row[0].integer ?? 0), low: UInt64(bitPattern: row[1].integer ?? 0), isIPv4: row[2].integer == 1,
                      until: row[3].integer ?? 0, bans: Int(row[4].integer ?? 1))
        }
    }

    private func transaction(_ body: () throws -> Void) throws {
        try database.execute("BEGIN IMMEDIATE;")
        do {
            try body()
            try database.execute("COMMIT;")
        } catch {
            try? database.execute("ROLLBACK;")
            throw error
        }
    }
}
