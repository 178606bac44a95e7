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
    /// Binds one listener per loop of `group`. A named port is first bound alone, without `SO_REUSEPORT`: a process
    /// already listening there (an older gateway under the same user, which the kernel would let share the port and
    /// take half the connections) fails the bind with `EADDRINUSE`. The probe has `SO_REUSEADDR`, as the listeners
    /// do: a connection that reached it in its moment of listening (a health check polling the port) lingers after
    /// it closes and would otherwise block the listeners' bind. Port 0 needs no probe: the kernel never hands out a
    /// port another socket holds, so the first listener takes a fresh one and the others join it.
    static func bind(host: String, port: Int, group: any EventLoopGroup,
                     bootstrap: (any EventLoop) -> ServerBootstrap) async throws -> [any Channel] {
        let loops = Array(group.makeIterator())
        if port != 0 {
            let probe = try await ServerBootstrap(group: loops[0]).serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port).get()
            try await probe.close()
        }
        var bound: [any Channel] = []
        do {
            for loop in loops {
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
}
