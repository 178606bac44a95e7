import Dispatch
import FoundationEssentials
import NIOConcurrencyHelpers
import WardenConfig
import WardenJSON
#if canImport(Glibc)
import Glibc
#endif

/// One access-log record: what was asked, by whom, and what the gateway decided.
struct AccessRecord {
    var requestID: String
    /// The id the client sent (`X-Request-Id`); vLLM sees the gateway's own.
    var clientRequestID: String? = nil
    var client: String
    var key: String?
    var method: String
    var path: String
    var model: String?
    var status: Int
    var promptTokens: Int?
    var completionTokens: Int?
    /// What the key was charged (``Settlement``): usage when vLLM reported it, else the reservation.
    var chargedTokens: Int? = nil
    var timeToFirstTokenMilliseconds: Double?
    var durationMilliseconds: Double
    var upstreamStatus: Int?
    var decision: String

    /// The record as one JSON line (with its newline), written into memory measured beforehand: it runs for every
    /// request.
    func json(at time: timespec) -> [UInt8] {
        // The fixed text, the time and numbers take at most 418 bytes; a string at most six bytes per byte escaped.
        let strings = requestID.utf8.count + (clientRequestID?.utf8.count ?? 0) + client.utf8.count + (key?.utf8.count ?? 0)
            + method.utf8.count + path.utf8.count + (model?.utf8.count ?? 0) + decision.utf8.count
        return JSONLineBuilder.line(capacity: 448 + 6 * strings) { line in
            line.raw("{\"time\":\"")
            line.timestamp(time)
            line.raw("\",\"request_id\":")
            line.string(requestID)
            if let clientRequestID {
                line.raw(",\"client_request_id\":")
                line.string(clientRequestID)
            }
            line.raw(",\"client\":")
            line.string(client)
            line.raw(",\"key\":")
            line.string(key)
            line.raw(",\"method\":")
            line.string(method)
            line.raw(",\"path\":")
            line.string(path)
            line.raw(",\"model\":")
            line.string(model)
            line.raw(",\"status\":")
            line.integer(status)
            line.raw(",\"tokens_in\":")
            line.integer(promptTokens)
            line.raw(",\"tokens_out\":")
            line.integer(completionTokens)
            line.raw(",\"tokens_charged\":")
            line.integer(chargedTokens)
            line.raw(",\"ttft_ms\":")
            line.hundredths(timeToFirstTokenMilliseconds)
            line.raw(",\"duration_ms\":")
            line.hundredths(durationMilliseconds)
            line.raw(",\"upstream_status\":")
            line.integer(upstreamStatus)
            line.raw(",\"decision\":")
            line.string(decision)
            line.raw("}\n")
        }
    }
}

/// Builds one JSON line straight into an array's storage of a size measured beforehand: no intermediate strings,
/// and no growth or uniqueness checks per byte (a write past the measured size traps rather than corrupts).
struct JSONLineBuilder {
    private let base: UnsafeMutablePointer<UInt8>
    private let capacity: Int
    private var count = 0

    private init(base: UnsafeMutablePointer<UInt8>, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    /// The bytes `body` writes, at most `capacity` of them.
    static func line(capacity: Int, _ body: (inout JSONLineBuilder) -> Void) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: capacity) { buffer, initialized in
            var builder = JSONLineBuilder(base: buffer.baseAddress!, capacity: capacity)
            body(&builder)
            initialized = builder.count
        }
    }

    /// Room for `length` more bytes.
    private mutating func take(_ length: Int) -> UnsafeMutablePointer<UInt8> {
        precondition(length <= capacity - count, "a JSON line longer than measured")
        defer { count += length }
        return base + count
    }

    private mutating func byte(_ value: UInt8) { take(1).pointee = value }

    mutating func raw(_ text: StaticString) {
        take(text.utf8CodeUnitCount).update(from: text.utf8Start, count: text.utf8CodeUnitCount)
    }

    /// A JSON string, escaped as RFC 8259 requires, or `null`.
    mutating func string(_ value: String?) {
        guard let value else { return raw("null") }
        byte(UInt8(ascii: "\""))
        // Ids, addresses and paths rarely need escaping: copied whole when they do not.
        let plain = value.utf8.withContiguousStorageIfAvailable { utf8 in
            guard !utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) else { return false }
            if let source = utf8.baseAddress { take(utf8.count).update(from: source, count: utf8.count) }
            return true
        }
        if plain != true {
            for character in value.utf8 { escaped(character) }
        }
        byte(UInt8(ascii: "\""))
    }

    private mutating func escaped(_ character: UInt8) {
        switch character {
        case 0x22, 0x5C:
            byte(0x5C)
            byte(character)
        case UInt8(ascii: "\n"): raw("\\n")
        case UInt8(ascii: "\r"): raw("\\r")
        case UInt8(ascii: "\t"): raw("\\t")
        case 0..<0x20:
            raw("\\u00")
            byte(Self.hexDigits[Int(character >> 4)])
            byte(Self.hexDigits[Int(character & 0xF)])
        default: byte(character)
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// A decimal integer, or `null`.
    mutating func integer(_ value: Int?) {
        guard let value else { return raw("null") }
        if value < 0 { byte(UInt8(ascii: "-")) }
        digits(value.magnitude, width: 1)
    }

    /// A non-negative value rounded to two decimals as Swift prints a `Double` there (`24.0`, `4.2`, `160.27`), or `null`.
    mutating func hundredths(_ value: Double?) {
        guard let value, value.isFinite else { return raw("null") }
        let hundredths = UInt(min((max(0, value) * 100).rounded(), 1e15))
        digits(hundredths / 100, width: 1)
        byte(UInt8(ascii: "."))
        let fraction = hundredths % 100
        byte(UInt8(ascii: "0") + UInt8(fraction / 10))
        if fraction % 10 != 0 { byte(UInt8(ascii: "0") + UInt8(fraction % 10)) }
    }

    /// RFC 3339 UTC time with milliseconds (`2026-11-27T09:03:10.706Z`): the civil date from the day count, no
    /// `gmtime_r` and no division loops per field.
    mutating func timestamp(_ time: timespec) {
        let seconds = Int64(time.tv_sec)
        let days = floorDivide(seconds, 86_400)
        let secondOfDay = Int(seconds - days * 86_400)
        let (year, month, day) = QuotaCalendar.civil(fromDays: days)
        digits(UInt(max(0, year)), width: 4)
        byte(UInt8(ascii: "-"))
        twoDigits(Int(month))
        byte(UInt8(ascii: "-"))
        twoDigits(Int(day))
        byte(UInt8(ascii: "T"))
        twoDigits(secondOfDay / 3_600)
        byte(UInt8(ascii: ":"))
        twoDigits(secondOfDay / 60 % 60)
        byte(UInt8(ascii: ":"))
        twoDigits(secondOfDay % 60)
        byte(UInt8(ascii: "."))
        let milliseconds = max(0, min(999, time.tv_nsec / 1_000_000))
        byte(UInt8(ascii: "0") + UInt8(milliseconds / 100))
        twoDigits(milliseconds % 100)
        byte(UInt8(ascii: "Z"))
    }

    private mutating func twoDigits(_ value: Int) {
        byte(UInt8(ascii: "0") + UInt8(value / 10))
        byte(UInt8(ascii: "0") + UInt8(value % 10))
    }

    /// `value` in decimal, zero-padded to at least `width` digits (at most 20).
    private mutating func digits(_ value: UInt, width: Int) {
        let digits = max(DecimalText.count(value), min(width, 20))
        DecimalText.write(value, digits: digits, to: UnsafeMutableRawPointer(take(digits)))
    }
}

/// The current wall-clock time for the access log.
func wallClockNow() -> timespec {
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME, &spec)
    return spec
}

/// Where access-log lines go: standard output (the journal under systemd) or a test's buffer.
public protocol AccessLogSink: Sendable {
    /// One line, UTF-8, with its newline.
    func write(_ line: [UInt8])
}

/// Writes each line to standard output with one `write(2)`; lines never interleave.
public struct StandardOutputSink: AccessLogSink {
    public init() {}
    public func write(_ line: [UInt8]) { Self.write(line) }

    static func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(1, buffer.baseAddress! + offset, buffer.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }
}

/// Collects lines and writes them in batches from a background thread (every 50 ms, or sooner past 64 KiB),
/// so a busy gateway makes one `write(2)` per batch instead of one per request. `flush()` writes what is pending.
public final class BufferedStandardOutputSink: AccessLogSink, @unchecked Sendable {
    private let pending = NIOLockedValueBox<[UInt8]>([])
    private let wake = DispatchSemaphore(value: 0)
    /// Set once, in `init`, before the sink is shared: whether the writer thread runs. Without it (no thread could be
    /// made) every line is written at once rather than held for a thread that never comes.
    private var batched = false

    public init() {
        batched = detachThread { [self] in
            while true {
                _ = wake.wait(timeout: .now() + .milliseconds(50))
                flush()
            }
        }
    }

    public func write(_ line: [UInt8]) {
        guard batched else { return StandardOutputSink.write(line) }
        let size = pending.withLockedValue { buffer -> Int in
            buffer.append(contentsOf: line)
            return buffer.count
        }
        if size > 65_536 { wake.signal() }
    }

    public func flush() {
        let batch = pending.withLockedValue { buffer -> [UInt8] in
            defer { buffer.removeAll(keepingCapacity: true) }
            return buffer
        }
        if !batch.isEmpty { StandardOutputSink.write(batch) }
    }
}

/// Keeps lines in memory, for tests.
public final class MemorySink: AccessLogSink {
    private let lines = NIOLockedValueBox<[String]>([])
    public init() {}
    public func write(_ line: [UInt8]) { lines.withLockedValue { $0.append(String(decoding: line, as: UTF8.self)) } }
    public var contents: [String] { lines.withLockedValue { $0 } }
}
