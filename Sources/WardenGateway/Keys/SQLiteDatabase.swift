import CSQLite

/// A SQLite failure with SQLite's own message and its (extended) result code.
public struct SQLiteError: Error, CustomStringConvertible {
    public var description: String
    /// SQLite's extended result code (`SQLITE_CANTOPEN`, `SQLITE_READONLY_DBMOVED`, …).
    public var code: Int32 = SQLITE_ERROR

    /// What an operator does about it.
    public enum Kind: Sendable { case damaged, permission, moved, busy, full, other }

    public var kind: Kind {
        // SQLITE_READONLY_DBMOVED, a macro Swift does not import: the file was replaced or moved under an open connection.
        if code == SQLITE_READONLY | (4 << 8) { return .moved }
        switch code & 0xFF {
        case SQLITE_NOTADB, SQLITE_CORRUPT: return .damaged
        case SQLITE_CANTOPEN, SQLITE_READONLY, SQLITE_PERM, SQLITE_AUTH: return .permission
        case SQLITE_BUSY, SQLITE_LOCKED: return .busy
        case SQLITE_FULL: return .full
        default: return .other
        }
    }
}

/// The little of SQLite the key store needs: one connection, prepared statements, typed columns.
final class SQLiteDatabase {
    private var handle: OpaquePointer?
    /// Opened with `immutable=1`: read without locks.
    let isImmutable: Bool

    /// `immutable`: the file is read as it stands, without the WAL's shared memory (for a reader that may not
    /// create it, when no writer has the file open).
    init(path: String, readOnly: Bool = false, immutable: Bool = false) throws(SQLiteError) {
        isImmutable = immutable
        let flags = readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        // An absolute path after `file://` (an empty authority): `file:` alone would read `//x` as a host.
        let name = immutable ? "file://" + Self.uriEscaped(path) + "?immutable=1" : path
        let status = sqlite3_open_v2(name, &handle, flags | SQLITE_OPEN_FULLMUTEX | (immutable ? SQLITE_OPEN_URI : 0), nil)
        guard status == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            let code = handle.map { sqlite3_extended_errcode($0) } ?? status
            sqlite3_close(handle)
            throw SQLiteError(description: "cannot open \(path): \(message)", code: code)
        }
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, 5000)
    }

    deinit { sqlite3_close(handle) }

    func execute(_ sql: String) throws(SQLiteError) {
        var error: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(handle, sql, nil, nil, &error)
        guard status == SQLITE_OK else {
            let message = error.map { String(cString: $0) } ?? "unknown error"
            sqlite3_free(error)
            throw SQLiteError(description: message, code: sqlite3_extended_errcode(handle))
        }
    }

    enum Value {
        case null, integer(Int64), text(String), blob([UInt8])
    }

    /// Runs one statement with bound parameters; returns the rows (each a list of column values).
    @discardableResult
    func query(_ sql: String, _ parameters: [Value] = []) throws(SQLiteError) -> [[Value]] {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK else { throw lastError() }
        defer { sqlite3_finalize(statement) }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for (offset, parameter) in parameters.enumerated() {
            let index = Int32(offset + 1)
            switch parameter {
            case .null: sqlite3_bind_null(statement, index)
            case .integer(let value): sqlite3_bind_int64(statement, index, value)
            case .text(let value): sqlite3_bind_text(statement, index, value, -1, transient)
            case .blob(let value): _ = value.withUnsafeBytes { sqlite3_bind_blob(statement, index, $0.baseAddress, Int32($0.count), transient) }
            }
        }
        var rows: [[Value]] = []
        while true {
            let status = sqlite3_step(statement)
            if status == SQLITE_DONE { break }
            guard status == SQLITE_ROW else { throw lastError() }
            rows.append((0..<sqlite3_column_count(statement)).map { column in
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement, column))
                case SQLITE_TEXT: return .text(String(cString: sqlite3_column_text(statement, column)))
                case SQLITE_BLOB:
                    let count = Int(sqlite3_column_bytes(statement, column))
                    guard count > 0, let bytes = sqlite3_column_blob(statement, column) else { return .blob([]) }
                    return .blob(Array(UnsafeRawBufferPointer(start: bytes, count: count)))
                default: return .null
                }
            })
        }
        return rows
    }

    private func lastError() -> SQLiteError {
        SQLiteError(description: String(cString: sqlite3_errmsg(handle)), code: sqlite3_extended_errcode(handle))
    }

    /// A path as a `file:` URI's path: `%`, `?` and `#` escaped.
    private static func uriEscaped(_ path: String) -> String {
        var escaped = ""
        for character in path {
            switch character {
            case "%": escaped += "%25"
            case "?": escaped += "%3f"
            case "#": escaped += "%23"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}

extension SQLiteDatabase.Value {
    var integer: Int64? { if case .integer(let value) = self { return value }; return nil }
    var text: String? { if case .text(let value) = self { return value }; return nil }
    var blob: [UInt8]? { if case .blob(let value) = self { return value }; return nil }
}
