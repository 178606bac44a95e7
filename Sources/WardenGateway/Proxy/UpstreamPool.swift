import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import WardenNIOSupport
#if canImport(Glibc)
import Glibc
#endif

/// A connection to vLLM, used by one exchange at a time on its event loop.
final class UpstreamConnection {
    let channel: any Channel
    let handler: UpstreamHandler
    var idleSince = NIODeadline.now()
    var served = 0

    init(channel: any Channel, handler: UpstreamHandler) {
        self.channel = channel
        self.handler = handler
    }

    /// Sends a request written as bytes: the parser learns its method (a `HEAD` answer has no body), the bytes
    /// go out from the connection's own handler.
    func send(_ request: ByteBuffer, method: HTTPMethod) {
        handler.expectResponse(to: method)
        handler.writeAndFlush(request)
    }
}

/// Keep-alive connections to vLLM, one pool per event loop so a proxied request never changes threads.
/// uvicorn closes idle connections after 5 s, so connections idle for 4 s are not reused.
final class UpstreamPool: Sendable {
    private let host: String
    private let port: Int
    /// vLLM's address when the deployment names it by IP (as it usually does: 127.0.0.1): connected to directly.
    /// NIO resolves a host name for every connection, off the event loop on a serial queue, which turned a burst of
    /// new streams into a queue of thread hops.
    private let address: SocketAddress?
    private let connectTimeout: TimeAmount
    private let readTimeout: TimeAmount
    private let pools = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<LoopPool>]>([:])
    static let maxIdleAge = TimeAmount.seconds(4)
    static let maxIdlePerLoop = 512

    final class LoopPool {
        var idle: [UpstreamConnection] = []
    }

    init(host: String, port: Int, connectTimeout: Duration, readTimeout: Duration) {
        self.host = host
        self.port = port
        address = try? SocketAddress(ipAddress: host, port: port)
        self.connectTimeout = TimeAmount(connectTimeout)
        self.readTimeout = TimeAmount(readTimeout)
    }

    /// Every connection to vLLM, proxied or the readiness probe, is set up here, so a socket setting that fails
    /// (as `SO_DEBUG` did for non-root users) fails readiness too instead of only the proxied requests.
    static func bootstrap(on eventLoop: any EventLoop, connectTimeout: TimeAmount) -> ClientBootstrap {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
    }

    private func pool(for eventLoop: any EventLoop) -> LoopPool {
        pools.withLockedValue { pools in
            if let existing = pools[ObjectIdentifier(eventLoop)] { return existing }
            let made = NIOLoopBound(LoopPool(), eventLoop: eventLoop)
            pools[ObjectIdentifier(eventLoop)] = made
            return made
        }.value
    }

    /// A live idle connection of this loop, or a new one; `reused` tells the caller a retry is safe on failure.
    func acquire(on eventLoop: any EventLoop, _ completion: @escaping (Result<(UpstreamConnection, reused: Bool), any Error>) -> Void) {
        let pool = pool(for: eventLoop)
        let now = NIODeadline.now()
        while let connection = pool.idle.popLast() {
            if connection.channel.isActive, now - connection.idleSince < Self.maxIdleAge {
                completion(.success((connection, true)))
                return
            }
            connection.channel.close(promise: nil)
        }
        connect(on: eventLoop) { completion($0.map { ($0, false) }) }
    }

    func connect(on eventLoop: any EventLoop, _ completion: @escaping (Result<UpstreamConnection, any Error>) -> Void) {
        let readTimeout = self.readTimeout
        let connectTimeout = self.connectTimeout
        let socket: CInt?
        do {
            socket = try address.map(Self.startConnecting)
        } catch {
            completion(.failure(error))
            return
        }
        let initializer: @Sendable (any Channel) -> EventLoopFuture<Void> = { channel in
            channel.eventLoop.makeCompletedFuture {
                // Requests go out as bytes the exchange wrote and answers are parsed from bytes by the handler
                // (``UpstreamResponseParser``): no HTTP codec in the pipeline.
                let handler = UpstreamHandler(handshake: socket.map { (socket: $0, timeout: connectTimeout) })
                try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: readTimeout))
                try channel.pipeline.syncOperations.addHandler(handler)
            }
        }
        let future = socket.map { ClientBootstrap(group: eventLoop).channelInitializer(initializer).withConnectedSocket($0) }
            ?? Self.bootstrap(on: eventLoop, connectTimeout: connectTimeout).channelInitializer(initializer).connect(host: host, port: port)
        future.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                do {
                    let handler = try channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
                    completion(.success(UpstreamConnection(channel: channel, handler: handler)))
                } catch {
                    channel.close(promise: nil)
                    completion(.failure(error))
                }
            case .failure(let error):
                completion(.failure(error))
            }
        }
    }

    /// A non-blocking socket whose connection to `address` has begun. The request is queued behind the handshake
    /// instead of after it (the kernel holds the write until the connection is up; on loopback it is up before
    /// `connect` returns): no event-loop round spent waiting for writability and none of NIO's connect bookkeeping
    /// per new connection — the largest share of the gateway's CPU when a burst of new streams arrives. The
    /// connect timeout still holds: ``UpstreamHandler`` times the first write.
    static func startConnecting(to address: SocketAddress) throws -> CInt {
        let socket = Glibc.socket(address.protocol.rawValue, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        // TCP_NODELAY comes with ClientBootstrap's default options, as on a connection it makes.
        let connected = address.withSockAddr { pointer, size in
            Glibc.connect(socket, pointer, socklen_t(size)) == 0 || errno == EINPROGRESS
        }
        guard connected else {
            let code = errno
            close(socket)
            throw IOError(errnoCode: code, reason: "connect")
        }
        return socket
    }

    /// Returns a connection whose response ended cleanly; it keeps reading, so a close by vLLM is noticed while idle.
    func release(_ connection: UpstreamConnection, on eventLoop: any EventLoop) {
        let pool = pool(for: eventLoop)
        guard connection.channel.isActive, pool.idle.count < Self.maxIdlePerLoop else {
            connection.channel.close(promise: nil)
            return
        }
        connection.handler.exchange = nil
        connection.idleSince = .now()
        connection.served += 1
        pool.idle.append(connection)
    }
}

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

    init(handshake: (socket: CInt, timeout: TimeAmount)? = nil) {
        self.handshake = handshake
    }

    /// The connection's handshake is not known to be done: a request handed to it now is not yet vLLM's.
    var awaitsHandshake: Bool { handshake != nil || awaitingHandshake }

    /// A request is going out: its answer is the next thing vLLM sends.
    func expectResponse(to method: HTTPMethod) {
        requestsSent += 1
        parser.expectResponse(to: method)
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

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
        exchange?.upstreamReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
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

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            let current = exchange
            exchange = nil
            current?.upstreamClosed(reason: "no data from the model server within the read timeout", retryable: false)
            context.close(promise: nil)
        }
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

