import Foundation
import NIOCore
import NIOPosix

/// An upstream that answers from a script, for what vllm-sim never does: each request's line picks its raw answer.
final class ScriptedUpstream: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var received = ""
    private let answer: @Sendable (String) -> String
    private let seen: RequestLines
    private let closeAfterAnswer: Bool
    private let delay: TimeAmount

    /// The request lines the upstream answered, in order, each with the connection (handler) it came on.
    final class RequestLines: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [(line: String, connection: ObjectIdentifier)] = []
        func add(_ line: String, on connection: ObjectIdentifier) { lock.withLock { lines.append((line, connection)) } }
        func count(_ prefix: String) -> Int { lock.withLock { lines.filter { $0.line.hasPrefix(prefix) }.count } }
        /// How many connections carried requests whose line starts so (the gateway's readiness probes have their own).
        func connections(carrying prefix: String) -> Int {
            lock.withLock { Set(lines.filter { $0.line.hasPrefix(prefix) }.map(\.connection)).count }
        }
    }

    init(answer: @escaping @Sendable (String) -> String, seen: RequestLines, closeAfterAnswer: Bool, delay: TimeAmount) {
        self.answer = answer
        self.seen = seen
        self.closeAfterAnswer = closeAfterAnswer
        self.delay = delay
    }

    /// Listens on a free loopback port; each connection gets its own handler. An empty answer closes the connection,
    /// as does every answer with `closeAfterAnswer`. Answers go out `delay` after their request arrived.
    static func start(closeAfterAnswer: Bool = false, delay: TimeAmount = .zero,
                      answer: @escaping @Sendable (String) -> String) async throws -> (any Channel, Int, RequestLines) {
        let seen = RequestLines()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ScriptedUpstream(answer: answer, seen: seen, closeAfterAnswer: closeAfterAnswer, delay: delay))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return (channel, channel.localAddress!.port!, seen)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += String(buffer: unwrapInboundIn(data))
        while let headEnd = received.range(of: "\r\n\r\n") {
            let head = received[..<headEnd.lowerBound]
            let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            let total = received.distance(from: received.startIndex, to: headEnd.upperBound) + length
            guard received.utf8.count >= total else { return }
            let requestLine = String(head.prefix { $0 != "\r" })
            received = String(received.dropFirst(total))
            seen.add(requestLine, on: ObjectIdentifier(self))
            let text = answer(requestLine)
            let channel = context.channel
            let closeAfterAnswer = self.closeAfterAnswer
            let reply = {
                guard !text.isEmpty else { return channel.close(promise: nil) }
                let written = channel.writeAndFlush(ByteBuffer(string: text))
                if closeAfterAnswer { written.whenComplete { _ in channel.close(promise: nil) } }
            }
            if delay == .zero {
                reply()
            } else {
                context.eventLoop.scheduleTask(in: delay, reply)
            }
        }
    }
}
