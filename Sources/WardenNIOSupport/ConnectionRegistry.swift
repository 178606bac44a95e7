import NIOConcurrencyHelpers
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// The accepted connections of a server, so shutdown can close the ones still open after a drain.
public final class ConnectionRegistry: Sendable {
    private let channels = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

    public init() {}

    /// Tracks `channel` until it closes (call from the child channel initializer).
    public func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        channels.withLockedValue { $0[id] = channel }
        channel.closeFuture.whenComplete { [self] _ in _ = channels.withLockedValue { $0.removeValue(forKey: id) } }
    }

    /// Closes every connection still open.
    public func closeAll() async {
        for channel in channels.withLockedValue({ Array($0.values) }) { try? await channel.close() }
    }
}

/// Wall-clock seconds since the epoch (for `created` fields and key expiry), without Foundation.
public func epochSeconds() -> Int {
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME, &spec)
    return spec.tv_sec
}
