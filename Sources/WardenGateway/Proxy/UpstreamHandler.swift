import NIOCore
import NIOHTTP1
#if canImport(Glibc)
import Glibc
#endif

/// The upstream side of a connection: parses vLLM's bytes and hands the response parts to the exchange that holds
/// the connection.
final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    var exchange: ProxyExchange?
    private var parser = UpstreamResponseParser()
    private var context: ChannelHandlerContext?

    /// Requests sent on this connection: a read's parser copy is kept only if no request went out meanwhile.
    private var requestsSent = 0
    /// A connection opened without awaiting its handshake (``UpstreamPool/startConnecting(to:)``): its socket and
    /// the connect timeout, until the first request goes out.
    private var handshake: (socket: CInt, timeout: TimeAmount)?
    /// The first request is queued but the handshake is not known to have completed: a failure now is a failed
    /// connect (vLLM saw nothing), not a broken exchange.
    private var awaitingHandshake = false
    private var handshakeTimer: Scheduled<Void>?

    /// vLLM must send something within this long of a request going out or of its last bytes, or the exchange
    /// fails (a stream whose model server went silent is ended); a connection idle in the pool closes after it too.
    private let readTimeout: TimeAmount
    private var lastActivity = NIODeadline.now()
    /// One timer per connection, not one per read: when it fires early (there was activity since it was set) it
    /// moves itself to the current deadline.
    private var readTimer: Scheduled<Void>?

    init(readTimeout: TimeAmount, handshake: (socket: CInt, timeout: TimeAmount)? = nil) {
        self.readTimeout = readTimeout
        self.handshake = handshake
    }

    /// The connection's handshake is not known to be done: a request handed to it now is not yet vLLM's.
    var awaitsHandshake: Bool { handshake != nil || awaitingHandshake }

    /// A request is going out: its answer is the next thing vLLM sends.
    func expectResponse(to method: HTTPMethod) {
        requestsSent += 1
        parser.expectResponse(to: method)
        // The read timeout counts from the request, not from the connection's last answer before it idled in the pool.
        lastActivity = .now()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { startReadTimer(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        readTimer?.cancel()
        readTimer = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        startReadTimer(context)
        context.fireChannelActive()
    }

    private func startReadTimer(_ context: ChannelHandlerContext) {
        guard readTimer == nil else { return }
        lastActivity = .now()
        scheduleReadTimer(context, at: lastActivity + readTimeout)
    }

    private func scheduleReadTimer(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        readTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            guard let self, let context = self.context else { return }
            self.readTimer = nil
            // A read and its read-complete come in one pass of the event loop, so the timer never fires between
            // them: the last read-complete is the last activity.
            if NIODeadline.now() < self.lastActivity + self.readTimeout {
                self.scheduleReadTimer(context, at: self.lastActivity + self.readTimeout)
            } else {
                let current = self.exchange
                self.exchange = nil
                current?.upstreamClosed(reason: "no data from the model server within the read timeout", retryable: false)
                context.close(promise: nil)
            }
        }
    }

    /// Writes request bytes from this handler's place in the pipeline (no generic channel write per request).
    func writeAndFlush(_ bytes: ByteBuffer) {
        guard let context else { return }
        guard let (socket, timeout) = handshake else {
            context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
            return
        }
        handshake = nil
        awaitingHandshake = true
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.assumeIsolated().whenComplete { [self] result in
            handshakeTimer?.cancel()
            handshakeTimer = nil
            guard awaitingHandshake else { return }
            switch result {
            case .success: handshakeCompleted()
            case .failure(let error): connectionFailed("connect failed: \(error)")
            }
        }
        context.writeAndFlush(wrapOutboundOut(bytes), promise: written)
        // Still unwritten: the kernel holds the bytes until the handshake completes, which must be within the
        // connect timeout. (On loopback the write has usually gone out already, and no timer is needed.)
        guard awaitingHandshake else { return }
        handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            guard awaitingHandshake, let context = self.context, context.channel.isActive else { return }
            if Self.isConnected(socket) {
                // Connected, the request only slow to go out (a large body, a busy reader): the read timeout governs.
                handshakeCompleted()
            } else {
                connectionFailed("connect timed out after \(timeout.nanoseconds / 1_000_000) ms")
            }
        }
    }

    /// Whether the socket's handshake has completed (it has a peer). Asked only while the channel is active, so the
    /// descriptor is still this connection's.
    private static func isConnected(_ socket: CInt) -> Bool {
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        return withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(socket, $0, &length) == 0 }
        }
    }

    private func handshakeCompleted() {
        awaitingHandshake = false
        exchange?.upstreamRequestDelivered()
    }

    /// The connection never carried the request: the exchange fails as for a refused connection (nothing charged,
    /// not retried), and the connection closes.
    private func connectionFailed(_ reason: String) {
        awaitingHandshake = false
        let current = exchange
        exchange = nil
        current?.upstreamConnectFailed(reason: reason)
        context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let exchange else {
            // Bytes on an idle connection mean vLLM and the gateway disagree about the stream: drop it.
            context.close(promise: nil)
            return
        }
        // Parsed on a copy: the parts it hands out can close this channel (a response that ends the connection),
        // and the handler's callbacks then read the parser while this read would still be writing it.
        var parser = self.parser
        let sent = requestsSent
        defer { if requestsSent == sent { self.parser = parser } }
        do {
            try parser.parse(unwrapInboundIn(data)) { exchange.upstreamReceived($0) }
        } catch {
            // Bytes after the response ended, or a response the parser refuses: the connection cannot be trusted,
            // and the request is not sent again (vLLM answered it, badly).
            let current = self.exchange
            self.exchange = nil
            current?.upstreamClosed(reason: "malformed response from the model server: \(error)", retryable: false)
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        lastActivity = .now()
        exchange?.upstreamReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        readTimer?.cancel()
        readTimer = nil
        if awaitingHandshake {
            connectionFailed("connect failed: the connection closed during the handshake")
        } else if let current = exchange {
            exchange = nil
            if parser.bodyEndsWithClose {
                // A body without a length or chunks ends with the connection: the close completes it.
                current.upstreamReceived(.end)
            } else {
                // Retried only when vLLM sent nothing of this response (a kept-alive connection it had closed).
                current.upstreamClosed(reason: "connection closed by the model server", retryable: !parser.receivedBytes)
            }
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A refused connect surfaces here first (NIO reads the socket's error before failing the queued write).
        guard !awaitingHandshake else {
            connectionFailed("connect failed: \(error)")
            return
        }
        let current = exchange
        exchange = nil
        current?.upstreamClosed(reason: "\(error)", retryable: !parser.receivedBytes)
        context.close(promise: nil)
    }
}

