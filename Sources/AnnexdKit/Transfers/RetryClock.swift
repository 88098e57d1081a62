#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The transfer queue's time: the wall clock as it read when the clock was made, moved on by a
/// monotonic clock (CLOCK_BOOTTIME: it counts a suspend too). Times read as wall times
/// (next_retry, queued_at, kept across restarts in the state directory), but a wall clock set
/// forwards or back while the daemon runs neither brings a retry forward nor holds it back.
struct RetryClock: Sendable {
    private let wallAtStart: Double
    private let monotonicAtStart: Double
    private let monotonic: @Sendable () -> Double

    init(wall: () -> Double = { Date().timeIntervalSince1970 }, monotonic: @escaping @Sendable () -> Double = RetryClock.bootTime) {
        self.monotonic = monotonic
        monotonicAtStart = monotonic()
        wallAtStart = wall()
    }

    func now() -> Double { wallAtStart + (monotonic() - monotonicAtStart) }

    @Sendable static func bootTime() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_BOOTTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
