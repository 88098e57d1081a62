#if ANNEXD_TSAN
#if canImport(Glibc)
import Glibc
#endif

/// In the ThreadSanitizer build only (`scripts/test-sanitizers` compiles with
/// `-DANNEXD_TSAN`), this `Mutex` stands in for `Synchronization.Mutex` throughout AnnexdKit
/// (a module's own declaration shadows the imported one).
///
/// Why: `Synchronization.Mutex` locks with atomics and futex(2) inside the toolchain's
/// Synchronization module, which is not built with ThreadSanitizer, so TSan sees no order
/// between two threads' critical sections and reports every access under the lock as a race
/// (it did: `ContentLockTable.tryLock` against `release`). TSan intercepts pthread mutexes,
/// so with this lock it checks the same code and still finds accesses made outside a lock.
/// The API is the subset AnnexdKit uses: `init` and `withLock`.
final class Mutex<Value>: @unchecked Sendable {
    private var value: Value
    private let lock: UnsafeMutablePointer<pthread_mutex_t>

    init(_ initialValue: Value) {
        value = initialValue
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_mutex_t())
        precondition(pthread_mutex_init(lock, nil) == 0)
    }

    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    func withLock<Result, E: Error>(_ body: (inout Value) throws(E) -> Result) throws(E) -> Result {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return try body(&value)
    }
}
#endif
