import NIOCore

/// A chunked body read from a connection's bytes (RFC 9112 §7.1), for both parsers: sizes (extensions ignored),
/// data, the CRLF after each chunk, then trailers, checked and dropped. A value: the parser holding it feeds bytes
/// and gets the body's data and its end.
struct ChunkedBody {
    struct Failure: Error {
        var reason: String
        /// Trailers past their count or line limit (a client gets 431, as for a head too large).
        var trailersTooLarge = false

        static func malformed(_ reason: String) -> Failure { Failure(reason: reason) }
        static func trailersTooLarge(_ reason: String) -> Failure { Failure(reason: reason, trailersTooLarge: true) }
    }

    enum Step {
        case data(ByteBuffer)
        case end
    }

    private enum State {
        case size
        case data(remaining: Int)
        case dataEnd
        case trailers(count: Int)
    }

    /// A chunk-size line with its extensions.
    static let maxSizeLine = 1024
    static let maxTrailers = 100
    static let maxTrailerLine = 80 * 1024

    private var state = State.size
    /// All size lines of the body together may not pass this (extensions are not body bytes: no body limit counts them).
    private let maxSizeLines: Int
    private var sizeLines = 0

    init(maxSizeLines: Int = .max) {
        self.maxSizeLines = maxSizeLines
    }

    /// The next piece of the body from `input`; nil once `input` is used up (a split line is then held in `held`).
    /// A body that cannot be read throws what `fail` makes of the reason.
    mutating func next<E: Error>(_ input: inout ByteBuffer, held: inout HeldInput, or fail: (Failure) -> E) throws(E) -> Step? {
        do {
            return try advance(&input, held: &held)
        } catch {
            throw fail(error)
        }
    }

    private mutating func advance(_ input: inout ByteBuffer, held: inout HeldInput) throws(Failure) -> Step? {
        while input.readableBytes > 0 {
            switch state {
            case .size:
                guard let line = try Self.line(&input, held: &held, limit: Self.maxSizeLine,
                                               tooLong: .malformed("a chunk-size line longer than \(Self.maxSizeLine) bytes")) else { return nil }
                sizeLines += line.readableBytes
                guard sizeLines <= maxSizeLines else { throw .malformed("chunk-size lines of more than \(maxSizeLines) bytes in one body") }
                guard let size = line.withUnsafeReadableBytes(FieldSyntax.chunkSize) else { throw .malformed("an invalid chunk size line") }
                state = size == 0 ? .trailers(count: 0) : .data(remaining: size)
            case .data(let remaining):
                let part = input.readSlice(length: min(remaining, input.readableBytes))!
                state = remaining == part.readableBytes ? .dataEnd : .data(remaining: remaining - part.readableBytes)
                return .data(part)
            case .dataEnd:
                guard input.readableBytes >= 2 else {
                    held.hold(input)
                    input.moveReaderIndex(forwardBy: input.readableBytes)
                    return nil
                }
                guard input.readInteger(as: UInt16.self) == 0x0D0A else { throw .malformed("a chunk not followed by CRLF") }
                state = .size
            case .trailers(let count):
                guard let line = try Self.line(&input, held: &held, limit: Self.maxTrailerLine,
                                               tooLong: .trailersTooLarge("a trailer longer than \(Self.maxTrailerLine) bytes")) else { return nil }
                guard line.readableBytes > 0 else { return .end }
                guard count < Self.maxTrailers else { throw .trailersTooLarge("more than \(Self.maxTrailers) trailer fields") }
                do {
                    _ = try line.withUnsafeReadableBytes { bytes throws(FieldSyntax.Violation) in try FieldSyntax.split(bytes) }
                } catch {
                    throw .malformed("\(error.rawValue) (a trailer)")
                }
                state = .trailers(count: count + 1)
            }
        }
        return nil
    }

    /// `tooLong` is made only when it is thrown: this runs for every chunk.
    private static func line(_ input: inout ByteBuffer, held: inout HeldInput, limit: Int, tooLong: @autoclosure () -> Failure) throws(Failure) -> ByteBuffer? {
        do {
            return try held.line(from: &input, upTo: HeldInput.lineEnd, limit: limit)
        } catch {
            throw tooLong()
        }
    }
}
