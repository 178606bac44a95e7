import WardenNIOSupport

/// A `multipart/form-data` transcription or translation request, read within the body cap: the model, and the
/// audio's length for the reservation.
struct AudioRequest: Equatable {
    var model: String?
    /// Whole seconds of audio, rounded up: exact for WAV (its header says), else an upper bound from the size at
    /// 16 kbit/s, below any bitrate a speech codec is used at.
    var seconds: Int

    static let minimumBytesPerSecond = 2_000

    static func parse(_ body: some Collection<UInt8>, contentType: String?) throws(GatewayError) -> AudioRequest {
        guard let form = MultipartForm(Array(body), contentType: contentType) else {
            throw .badRequest("Audio requests must be multipart/form-data with a boundary.", code: "invalid_body")
        }
        // Two parts of a field the gateway reads are read differently by it (the first) and vLLM's form parser (the
        // last): a short first file would reserve for a long second one. List fields (`timestamp_granularities[]`) repeat.
        for name in ["file", "model"] where form.parts.filter({ $0.name == name }).count > 1 {
            throw .badRequest("The form has more than one `\(name)` part; send it once.", code: "invalid_body", param: name)
        }
        guard let file = form["file"] else { throw .badRequest("The form has no `file` part.", code: "missing_field", param: "file") }
        return AudioRequest(model: form.text("model"), seconds: seconds(of: file))
    }

    /// Seconds of audio, rounded up, at least 1.
    static func seconds(of file: ArraySlice<UInt8>) -> Int {
        max(1, WaveDuration.seconds(file) ?? (file.count + minimumBytesPerSecond - 1) / minimumBytesPerSecond)
    }
}
