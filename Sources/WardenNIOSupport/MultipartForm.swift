/// A `multipart/form-data` body split into its named parts: what vLLM's audio routes receive. Shared by the
/// gateway (which meters the audio) and the simulator (which answers it), so both read a form the same way.
public struct MultipartForm {
    public struct Part {
        public var name: String
        public var body: ArraySlice<UInt8>
    }

    public let parts: [Part]

    /// `nil` when `contentType` is not multipart/form-data with a boundary.
    public init?(_ body: [UInt8], contentType: String?) {
        guard let contentType, contentType.lowercased().hasPrefix("multipart/form-data"), let boundary = Self.boundary(contentType) else {
            return nil
        }
        let delimiter = Array("--\(boundary)".utf8)
        var parts: [Part] = []
        var position = Self.find(delimiter, in: body, from: 0)
        while let start = position {
            let headersStart = start + delimiter.count + 2  // the CRLF after the delimiter
            guard headersStart < body.count, let headersEnd = Self.find(Array("\r\n\r\n".utf8), in: body, from: headersStart) else { break }
            let bodyStart = headersEnd + 4
            guard let next = Self.find(Array("\r\n".utf8) + delimiter, in: body, from: bodyStart) else { break }
            if let name = Self.fieldName(String(decoding: body[headersStart..<headersEnd], as: UTF8.self)) {
                parts.append(Part(name: name, body: body[bodyStart..<next]))
            }
            position = next + 2
        }
        self.parts = parts
    }

    public subscript(name: String) -> ArraySlice<UInt8>? { parts.first { $0.name == name }?.body }

    /// A text field's value.
    public func text(_ name: String) -> String? { self[name].map { String(decoding: $0, as: UTF8.self) } }

    private static func boundary(_ contentType: String) -> String? {
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.filter { $0 != " " && $0 != "\t" } }
            guard pair.count == 2, pair[0].lowercased() == "boundary" else { continue }
            let value = pair[1].hasPrefix("\"") && pair[1].hasSuffix("\"") && pair[1].count >= 2 ? String(pair[1].dropFirst().dropLast()) : pair[1]
            return value.isEmpty || value.utf8.count > 200 ? nil : value
        }
        return nil
    }

    private static func fieldName(_ headers: String) -> String? {
        for line in headers.split(separator: "\r\n") where line.lowercased().hasPrefix("content-disposition:") {
            for parameter in line.split(separator: ";").dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.filter { $0 != " " } }
                if pair.count == 2, pair[0] == "name" { return pair[1].filter { $0 != "\"" } }
            }
        }
        return nil
    }

    /// Knuth–Morris–Pratt: linear in the body whatever the boundary. A naive search costs the body times the
    /// boundary's length in the worst case — seconds for a 200-byte boundary over a body of dashes, on an event loop.
    static func find(_ needle: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, bytes.count >= needle.count, start >= 0, start <= bytes.count - needle.count else { return nil }
        // fallback[i]: the length of the longest proper prefix of needle[0...i] that is also its suffix.
        var fallback = [Int](repeating: 0, count: needle.count)
        var length = 0
        for index in needle.indices.dropFirst() {
            while length > 0, needle[index] != needle[length] { length = fallback[length - 1] }
            if needle[index] == needle[length] { length += 1 }
            fallback[index] = length
        }
        var matched = 0
        for index in start..<bytes.count {
            while matched > 0, bytes[index] != needle[matched] { matched = fallback[matched - 1] }
            if bytes[index] == needle[matched] { matched += 1 }
            if matched == needle.count { return index - needle.count + 1 }
        }
        return nil
    }
}

/// Seconds of audio in a file: exact for RIFF/WAVE (its header says), else `nil`.
public enum WaveDuration {
    public static func seconds(_ file: ArraySlice<UInt8>) -> Int? {
        let file = Array(file)
        guard file.count >= 12, file[0..<4].elementsEqual("RIFF".utf8), file[8..<12].elementsEqual("WAVE".utf8) else { return nil }
        var offset = 12
        var byteRate = 0
        var formatSeen = false
        while offset + 8 <= file.count {
            let size = Int(littleEndian32(file, offset + 4))
            let id = file[offset..<offset + 4]
            if id.elementsEqual("fmt ".utf8), offset + 20 <= file.count {
                // A second format chunk: decoders read the first, this loop would keep the last. Not a WAV to trust.
                guard !formatSeen else { return nil }
                formatSeen = true
                byteRate = Int(littleEndian32(file, offset + 16))
                // A decoder plays frames: sample rate × frame size. The header's own byte rate is a claim a client
                // can inflate to shrink the reservation; the slower of the two gives the longer duration.
                if offset + 22 <= file.count {
                    // A frame (one sample of every channel) is `blockAlign` bytes: exact for 12- and 24-bit samples too.
                    let played = Int(littleEndian32(file, offset + 12)) * Int(littleEndian16(file, offset + 20))
                    if played > 0 { byteRate = byteRate > 0 ? min(byteRate, played) : played }
                }
            } else if id.elementsEqual("data".utf8) {
                guard byteRate > 0 else { return nil }
                // A header may claim more data than was sent; the bytes present bound it.
                let dataBytes = min(size, file.count - offset - 8)
                return (dataBytes + byteRate - 1) / byteRate
            }
            offset += 8 + size + (size & 1)
        }
        return nil
    }

    private static func littleEndian16(_ bytes: [UInt8], _ at: Int) -> UInt16 {
        UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8
    }

    private static func littleEndian32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }
}
