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

    /// The record as one JSON line, written byte by byte into one buffer: it runs for every request.
    func json(at time: timespec) -> String {
        var line = JSONLineBuilder(capacity: 384)
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
        return line.text
    }
}

/// Builds one JSON line in a byte array: no intermediate strings, numbers written digit by digit.
struct JSONLineBuilder {
    private var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    var text: String { String(decoding: bytes, as: UTF8.self) }

    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// A JSON string, escaped, or `null`.
    mutating func string(_ value: String?) {
        guard let value else { return raw("null") }
        bytes.appendJSONString(value)
    }

    /// A decimal integer, or `null`.
    mutating func integer(_ value: Int?) {
        guard let value else { return raw("null") }
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        digits(value.magnitude, width: 1)
    }

    /// A non-negative value rounded to two decimals as Swift prints a `Double` there (`24.0`, `4.2`, `160.27`), or `null`.
    mutating func hundredths(_ value: Double?) {
        guard let value, value.isFinite else { return raw("null") }
        let hundredths = UInt(min((max(0, value) * 100).rounded(), 1e15))
        digits(hundredths / 100, width: 1)
        bytes.append(UInt8(ascii: "."))
        let fraction = hundredths % 100
        bytes.append(UInt8(ascii: "0") + UInt8(fraction / 10))
        if fraction % 10 != 0 { bytes.append(UInt8(ascii: "0") + UInt8(fraction % 10)) }
    }

    /// RFC 3339 UTC time with milliseconds (`2026-11-27T09:03:10.706Z`): the civil date from the day count, no
    /// `gmtime_r` and no division loops per field.
    mutating func timestamp(_ time: timespec) {
        let seconds = Int64(time.tv_sec)
        let days = floorDivide(seconds, 86_400)
        let secondOfDay = Int(seconds - days * 86_400)
        let (year, month, day) = QuotaCalendar.civil(fromDays: days)
        digits(UInt(max(0, year)), width: 4)
        bytes.append(UInt8(ascii: "-"))
        twoDigits(Int(month))
        bytes.append(UInt8(ascii: "-"))
        twoDigits(Int(day))
        bytes.append(UInt8(ascii: "T"))
        twoDigits(secondOfDay / 3_600)
        bytes.append(UInt8(ascii: ":"))
        twoDigits(secondOfDay / 60 % 60)
        bytes.append(UInt8(ascii: ":"))
        twoDigits(secondOfDay % 60)
        bytes.append(UInt8(ascii: "."))
        let milliseconds = max(0, min(999, time.tv_nsec / 1_000_000))
        bytes.append(UInt8(ascii: "0") + UInt8(milliseconds / 100))
        twoDigits(milliseconds % 100)
        bytes.append(UInt8(ascii: "Z"))
    }

    private mutating func twoDigits(_ value: Int) {
        bytes.append(UInt8(ascii: "0") + UInt8(value / 10))
        bytes.append(UInt8(ascii: "0") + UInt8(value % 10))
    }

    /// `value` in decimal, zero-padded to at least `width` digits (at most 20): written backwards into a scratch
    /// word triple, dividing only by the constant 10, then appended at once.
    private mutating func digits(_ value: UInt, width: Int) {
        var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &scratch) { buffer in
            var position = buffer.count
            var rest = value
            repeat {
                position -= 1
                buffer[position] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            } while rest > 0
            while buffer.count - position < min(width, 20) {
                position -= 1
                buffer[position] = UInt8(ascii: "0")
            }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[position...]))
        }
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
    func write(_ line: String)
}

/// Writes each line to standard output with one `write(2)`; lines never interleave.
public struct StandardOutputSink: AccessLogSink {
    public init() {}
    public func write(_ line: String) { Self.write(Array(line.utf8)) }

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

    public init() {
        detachThread { [self] in
            while true {
                _ = wake.wait(timeout: .now() + .milliseconds(50))
                flush()
            }
        }
    }

    public func write(_ line: String) {
        let size = pending.withLockedValue { buffer -> Int in
            buffer.append(contentsOf: line.utf8)
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
    public func write(_ line: String) { lines.withLockedValue { $0.append(line) } }
    public var contents: [String] { lines.withLockedValue { $0 } }
}
