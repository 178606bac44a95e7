import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// The public listener as one socket per event loop, sharing the address through `SO_REUSEPORT` (as nginx's
/// `listen … reuseport`): the kernel spreads new connections over the sockets and each connection is served on the
/// loop that accepted it. With one shared socket every accepted connection was handed to another loop and the
/// acceptor told back — two thread wake-ups per connection, which a burst of new streams queued behind.
enum PublicListeners {
    /// Binds one listener per loop of `group`. A named port is first checked with a plain socket bound without
    /// `SO_REUSEPORT` and never listening: a process already listening there (an older gateway under the same user,
    /// which the kernel would let join the group and take a share of the connections) fails that bind with
    /// `EADDRINUSE`. Port 0 needs no check: the kernel never hands out a port another socket holds, so the first
    /// listener takes a fresh one and the others join it.
    static func bind(host: String, port: Int, group: any EventLoopGroup,
                     bootstrap: (any EventLoop) -> ServerBootstrap) async throws -> [any Channel] {
        if port != 0 { try checkNoListener(host: host, port: port) }
        var bound: [any Channel] = []
        do {
            for loop in group.makeIterator() {
                let sharedPort = bound.first?.localAddress?.port ?? port
                bound.append(try await bootstrap(loop).serverChannelOption(.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
                    .bind(host: host, port: sharedPort).get())
            }
        } catch {
            for channel in bound { try? await channel.close() }
            throw error
        }
        return bound
    }

    /// `SO_REUSEADDR` as the listeners have it, so connections of an earlier run lingering in TIME_WAIT do not count;
    /// a socket listening on the address does.
    private static func checkNoListener(host: String, port: Int) throws {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let socket = Glibc.socket(address.protocol.rawValue, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socket >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        defer { close(socket) }
        var one: CInt = 1
        let bound = address.withSockAddr { pointer, size in
            setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size)) == 0
                && Glibc.bind(socket, pointer, socklen_t(size)) == 0
        }
        guard bound else { throw IOError(errnoCode: errno, reason: "bind") }
    }
}
