import NIOCore
import NIOHTTP1
import WardenJSON
import WardenNIOSupport

/// `/v1/audio/transcriptions` and `/translations`: multipart forms, usage `{"type":"duration","seconds":S}` on
/// the JSON answer; streamed as `transcription.chunk` events, with usage only when `stream_include_usage` is set.
public enum AudioRoutes {
    /// The simulator's length of a non-WAV file: 16 kB per second (128 kbit/s).
    static let compressedBytesPerSecond = 16_000
    /// Audio tokens per second of the simulated encoder (streamed usage counts these).
    public static let tokensPerSecond = 50

    static func answer(_ route: String, head: HTTPRequestHead, body: ByteBuffer, core: SimulatorCore, context: ChannelHandlerContext, keepAlive: Bool) {
        let configuration = core.configuration
        guard let form = MultipartForm(Array(body.readableBytesView), contentType: head.headers.first(name: "content-type")),
              let file = form["file"] else {
            core.state.countFailure()
            HTTPResponseWriter.respond(context, status: .badRequest, contentType: "application/json",
                                       body: SimulatorError.validation("file", "Field required").json(legacy: configuration.legacyErrorShape), keepAlive: keepAlive)
            return
        }
        let seconds = max(1, WaveDuration.seconds(file) ?? (file.count + compressedBytesPerSecond - 1) / compressedBytesPerSecond)
        let words = (0..<seconds).map { FakeTokenizer.generatedToken(seed: UInt64(file.count), choice: 0, index: $0) }
        let text = words.joined()
        var quoted = ""
        quoted.appendJSONString(text)
        let promptTokens = seconds * tokensPerSecond
        core.state.countImmediate(route: "POST \(route)", promptTokens: promptTokens, generatedTokens: words.count)
        if form.text("stream") == "true" {
            var events = ""
            for word in words {
                var piece = ""
                piece.appendJSONString(word)
                events += "data: {\"id\":\"trsc-sim\",\"object\":\"transcription.chunk\",\"created\":\(epochSeconds()),\"model\":\"\(configuration.servedModelName)\",\"choices\":[{\"delta\":{\"content\":\(piece)},\"finish_reason\":null,\"stop_reason\":null}]}\n\n"
            }
            if form.text("stream_include_usage") == "true" {
                events += "data: {\"id\":\"trsc-sim\",\"object\":\"transcription.chunk\",\"created\":\(epochSeconds()),\"model\":\"\(configuration.servedModelName)\",\"choices\":[],\"usage\":{\"prompt_tokens\":\(promptTokens),\"total_tokens\":\(promptTokens + words.count),\"completion_tokens\":\(words.count)}}\n\n"
            }
            events += "data: [DONE]\n\n"
            HTTPResponseWriter.respond(context, status: .ok, contentType: "text/event-stream; charset=utf-8", body: events, keepAlive: keepAlive)
            return
        }
        HTTPResponseWriter.respond(context, status: .ok, contentType: "application/json",
                                   body: "{\"text\":\(quoted),\"usage\":{\"type\":\"duration\",\"seconds\":\(seconds)}}", keepAlive: keepAlive)
    }
}
