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

    func json(time: String) -> String {
        var line = "{\"time\":\"\(time)\",\"request_id\":"
        line.appendJSONString(requestID)
        if let clientRequestID {
            line += ",\"client_request_id\":"
            line.appendJSONString(clientRequestID)
        }
        line += ",\"client\":"
        line.appendJSONString(client)
        line += ",\"key\":" + quotedOrNull(key) + ",\"method\":"
        line.appendJSONString(method)
        line += ",\"path\":"
        line.appendJSONString(path)
        line += ",\"model\":" + quotedOrNull(model)
        line += ",\"status\":\(status),\"tokens_in\":\(numberOrNull(promptTokens)),\"tokens_out\":\(numberOrNull(completionTokens)),\"tokens_charged\":\(numberOrNull(chargedTokens))"
        line += ",\"ttft_ms\":\(timeToFirstTokenMilliseconds.map { String(($0 * 100).rounded() / 100) } ?? "null")"
        line += ",\"duration_ms\":\(String((durationMilliseconds * 100).rounded() / 100)),\"upstream_status\":\(numberOrNull(upstreamStatus)),\"decision\":"
        line.appendJSONString(decision)
        return line + "}\n"
    }

    private func quotedOrNull(_ text: String?) -> String {
        guard let text else { return "null" }
        var quoted = ""
        quoted.appendJSONString(text)
        return quoted
    }

    private func numberOrNull(_ value: Int?) -> String { value.map(String.init) ?? "null" }
}

/// Where access-log lines go: standard output (the journal under systemd) or a test's buffer.
public protocol AccessLogSink: Sendable {
    func write(_ line: String)
}

/// Writes each line to standard output with one `write(2)`; lines never interleave.
public struct StandardOutputSink: AccessLogSink {
    public init() {}
    public func write(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { buffer in
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
    private let target = StandardOutputSink()

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
        if !batch.isEmpty { target.write(String(decoding: batch, as: UTF8.self)) }
    }
}

/// Keeps lines in memory, for tests.
public final class MemorySink: AccessLogSink {
    private let lines = NIOLockedValueBox<[String]>([])
    public init() {}
    public func write(_ line: String) { lines.withLockedValue { $0.append(line) } }
    public var contents: [String] { lines.withLockedValue { $0 } }
}

/// RFC 3339 UTC time with milliseconds, without Foundation's formatter cost.
func rfc3339Now() -> String {
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME, &spec)
    var seconds = spec.tv_sec
    var parts = tm()
    gmtime_r(&seconds, &parts)
    func pad(_ value: Int32, _ width: Int = 2) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
    return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1))-\(pad(parts.tm_mday))T\(pad(parts.tm_hour)):\(pad(parts.tm_min)):\(pad(parts.tm_sec)).\(pad(Int32(spec.tv_nsec / 1_000_000), 3))Z"
}
