#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on a new detached thread of its own; `false` when no thread could be made (`pthread_create` failed:
/// a process or memory limit), and `body` did not run — the caller chooses what to do instead. Not a Dispatch queue:
/// libdispatch's pool on Linux adds workers only once a second, so a check queued behind a busy worker waited a
/// whole second.
@discardableResult
public func detachThread(_ body: @escaping @Sendable () -> Void) -> Bool {
    final class Work: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var thread = pthread_t()
    let work = Unmanaged.passRetained(Work(body))
    let started = pthread_create(&thread, nil, { argument in
        Unmanaged<Work>.fromOpaque(argument!).takeRetainedValue().body()
        return nil
    }, work.toOpaque())
    guard started == 0 else {
        work.release()
        return false
    }
    pthread_detach(thread)
    return true
}
