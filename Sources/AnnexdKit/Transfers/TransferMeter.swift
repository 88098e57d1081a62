import Foundation
import Synchronization

/// A token bucket shared by the transfers it limits (all downloads, or one peer's uploads…).
/// The rate changes at run time; 0 means no limit. Callers sleep outside the lock.
final class RateLimiter: Sendable {
    private struct Bucket {
        var rate: Double
        var tokens: Double
        var last: Double
    }
    private let bucket: Mutex<Bucket>

    init(bytesPerSecond: Int64 = 0) {
        bucket = Mutex(Bucket(rate: Double(bytesPerSecond), tokens: 0, last: Self.now()))
    }

    var bytesPerSecond: Int64 {
        get { Int64(bucket.withLock { $0.rate }) }
        set { bucket.withLock { $0.rate = Double(newValue); $0.tokens = 0; $0.last = Self.now() } }
    }

    /// Takes up to `want` bytes' worth of tokens, waiting until at least one slice is available.
    /// Slices are small (a tenth of a second's worth) so a limit holds evenly.
    func take(_ want: Int) -> Int {
        while true {
            let (granted, wait) = bucket.withLock { b -> (Int, Double) in
                guard b.rate > 0 else { return (want, 0) }
                let now = Self.now()
                // At most a quarter second of burst.
                b.tokens = min(b.tokens + (now - b.last) * b.rate, b.rate / 4)
                b.last = now
                let slice = max(1, min(want, Int(b.rate / 10)))
                if b.tokens >= Double(slice) {
                    b.tokens -= Double(slice)
                    return (slice, 0)
                }
                return (0, (Double(slice) - b.tokens) / b.rate)
            }
            if granted > 0 { return granted }
            Thread.sleep(forTimeInterval: min(wait, 0.25))
        }
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// One running transfer's view of its payload: bytes moved (for progress and rate), when bytes
/// last moved (stall detection), and the limiters it must respect.
final class TransferMeter: PayloadMeter, Sendable {
    private struct State {
        var moved: Int64 = 0
        var lastMove = RateLimiter.now()
        /// (time, moved) a few seconds back, for the rate.
        var samples: [(Double, Int64)] = []
    }
    private let state = Mutex(State())
    let limiters: [RateLimiter]

    init(limiters: [RateLimiter]) { self.limiters = limiters }

    func admit(_ want: Int) -> Int {
        var n = want
        for l in limiters { n = min(n, l.take(n)) }
        return n
    }

    func moved(_ count: Int) {
        guard count > 0 else { return }
        state.withLock {
            $0.moved += Int64(count)
            $0.lastMove = RateLimiter.now()
        }
    }

    /// Bytes moved since the meter was made.
    var moved: Int64 { state.withLock { $0.moved } }

    /// Seconds since a byte last moved.
    var idle: Double { RateLimiter.now() - state.withLock { $0.lastMove } }

    /// Bytes per second over the last ~5 seconds (call about once a second).
    func sampleRate() -> Double {
        state.withLock { s in
            let now = RateLimiter.now()
            s.samples.append((now, s.moved))
            s.samples.removeAll { now - $0.0 > 5 }
            guard let first = s.samples.first, now - first.0 > 0.2 else { return 0 }
            return Double(s.moved - first.1) / (now - first.0)
        }
    }
}
