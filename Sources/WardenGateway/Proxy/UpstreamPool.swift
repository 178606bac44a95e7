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
                // (``UpstreamResponseParser``), which also keeps the read timeout: one handler in the pipeline.
                let handler = UpstreamHandler(readTimeout: readTimeout, handshake: socket.map { (socket: $0, timeout: connectTimeout) })
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
