#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on a new detached thread of its own. Not a Dispatch queue: libdispatch's pool on Linux adds workers
/// only once a second, so a check queued behind a busy worker waited a whole second.
public func detachThread(_ body: @escaping @Sendable () -> Void) {
    final class Work: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var thread = pthread_t()
    let started = pthread_create(&thread, nil, { argument in
        Unmanaged<Work>.fromOpaque(argument!).takeRetainedValue().body()
        return nil
    }, Unmanaged.passRetained(Work(body)).toOpaque())
    if started == 0 { pthread_detach(thread) } else { body() }
}
