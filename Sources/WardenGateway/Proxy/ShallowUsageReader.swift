/// Finds vLLM's own `usage` member of a JSON document fed to it read by read: for the Responses API,
/// whose answers echo what the client sent (`tools`, `text`, `metadata`), so a client can put a `"usage":{…}` of
/// its own inside a tool's schema, ahead of vLLM's. vLLM's own is a member of the response object — the top-level
/// object of a JSON body, one level down in a stream event (`{"type":…,"response":{…}}`) — and anything the
/// client wrote sits deeper, so only a member at that depth counts. One pass, byte by byte, keeping only its depth, whether it is inside a string, and the
/// bytes of a usage object being read; `"usage":null` (a response not yet run) counts as a member with no usage.
struct ShallowUsageReader {
    private let shape: UsageShape
    private var depth = 0
    private var inString = false
    private var escaped = false
    /// The current string's bytes while it can still be `usage`; `nil` once it cannot.
    private var key: [UInt8]? = nil
    /// The string just closed was `usage`, and only white space followed it: a `:` makes it a member name.
    private var closedUsageKey = false
    /// A `usage` member name and its `:` were read: the value comes next.
    private var awaitingValue = false
    /// The usage object being read, from its `{`, and the depth it closes at.
    private var object: [UInt8]? = nil
    private var objectDepth = 0
    /// The depth of the object whose `usage` member vLLM writes: 1 in a JSON body, 2 in a stream event.
    private let expectedDepth: Int
    /// vLLM's `usage` member, once read: its counts (`nil` for `null` or unreadable). Members at other depths are
    /// ignored: a body cut off after the echoed tools but before vLLM's usage must leave no usage, not a planted one.
    private(set) var member: Usage??

    /// A usage object is a few hundred bytes; a longer one is not read.
    static let objectLimit = 4096
    private static let name = Array("usage".utf8)

    init(shape: UsageShape, expectedDepth: Int) {
        self.shape = shape
        self.expectedDepth = expectedDepth
    }

    mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        for byte in bytes { feed(byte) }
    }

    private mutating func feed(_ byte: UInt8) {
        if object != nil {
            if object!.count < Self.objectLimit { object!.append(byte) } else { object = nil }
        }
        if inString {
            if escaped {
                escaped = false
                key = nil
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
            } else if byte == UInt8(ascii: "\"") {
                inString = false
                closedUsageKey = key == Self.name
            } else if key != nil {
                if key!.count < Self.name.count { key!.append(byte) } else { key = nil }
            }
            return
        }
        if awaitingValue, !Self.isSpace(byte) {
            awaitingValue = false
            if byte == UInt8(ascii: "{"), object == nil {
                object = [byte]
                objectDepth = depth
            } else if byte == UInt8(ascii: "n") {
                record(nil)
            }
        }
        switch byte {
        case UInt8(ascii: "\""):
            inString = true
            key = []
            closedUsageKey = false
        case UInt8(ascii: ":"):
            awaitingValue = closedUsageKey
            closedUsageKey = false
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            depth += 1
            closedUsageKey = false
        case UInt8(ascii: "}"), UInt8(ascii: "]"):
            depth -= 1
            closedUsageKey = false
            if let read = object, depth == objectDepth, byte == UInt8(ascii: "}") {
                object = nil
                record(read.withUnsafeBytes { UsageScanner.counts(in: $0, object: 0..<$0.count, shape: shape) })
            }
        default:
            if !Self.isSpace(byte) { closedUsageKey = false }
        }
    }

    /// A `usage` member of the object at the current depth.
    private mutating func record(_ usage: Usage?) {
        if depth == expectedDepth, member == nil { member = .some(usage) }
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\t")
    }
}
