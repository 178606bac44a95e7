import Foundation
import NIOCore
import NIOPosix

/// An upstream that answers from a script, for what vllm-sim never does: each request's line picks its raw answer.
final class ScriptedUpstream: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var received: [UInt8] = []
    private let answer: @Sendable (String) -> String
    private let seen: RequestLines
    private let closeAfterAnswer: Bool
    private let delay: TimeAmount

    /// The request lines the upstream answered, in order, each with the connection (handler) it came on, and the
    /// connections the gateway closed.
    final class RequestLines: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [(line: String, connection: ObjectIdentifier)] = []
        private var closedConnections: Set<ObjectIdentifier> = []
        func add(_ line: String, on connection: ObjectIdentifier) { lock.withLock { lines.append((line, connection)) } }
        func closed(_ connection: ObjectIdentifier) { _ = lock.withLock { closedConnections.insert(connection) } }
        /// Whether every connection that carried a request whose line starts so has been closed.
        func allClosed(carrying prefix: String) -> Bool {
            lock.withLock { Set(lines.filter { $0.line.hasPrefix(prefix) }.map(\.connection)).isSubset(of: closedConnections) }
        }
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
        received += unwrapInboundIn(data).readableBytesView
        // Framed in bytes: a head's end and its length are byte offsets, whatever the text holds.
        let headEndMarker: [UInt8] = Array("\r\n\r\n".utf8)
        while let headEnd = received.indices.dropLast(3).first(where: { received[$0..<$0 + 4].elementsEqual(headEndMarker) }) {
            let head = String(decoding: received[..<headEnd], as: UTF8.self)
            let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            let total = headEnd + 4 + length
            guard received.count >= total else { return }
            let requestLine = String(head.prefix { $0 != "\r" })
            received.removeFirst(total)
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
                context.eventLoop.assumeIsolated().scheduleTask(in: delay, reply)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        seen.closed(ObjectIdentifier(self))
        context.fireChannelInactive()
    }
}
