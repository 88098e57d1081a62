import Foundation
import Synchronization

/// A token bucket shared by the transfers it limits (all downloads, or one peer's uploads…).
/// The rate changes at run time; 0 means no limit. Callers sleep outside the lock, after
/// moving bytes (`consume`), never holding it.
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

    /// How much to move at once: a tenth of a second's worth, so the limit holds evenly.
    func chunk(_ want: Int) -> Int {
        let rate = bucket.withLock { $0.rate }
        return rate > 0 ? max(1, min(want, Int(rate / 10))) : want
    }

    /// Counts `n` bytes that moved; when they overdrew the bucket, waits until it is even again.
    /// (Charging after the fact counts what really moved: a read may return less than asked.)
    func consume(_ n: Int) {
        let wait = bucket.withLock { b -> Double in
            guard b.rate > 0 else { return 0 }
            let now = Self.now()
            // At most a quarter second of burst.
            b.tokens = min(b.tokens + (now - b.last) * b.rate, b.rate / 4) - Double(n)
            b.last = now
            return b.tokens < 0 ? -b.tokens / b.rate : 0
        }
        if wait > 0 { Thread.sleep(forTimeInterval: wait) }
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
        /// (time, moved) once a second, back as far as stall detection needs, for the rate and stalls.
        var samples: [(Double, Int64)] = []
        /// When the payload began (DATA), for stall detection.
        var dataStart: Double?
        let created = RateLimiter.now()
    }
    /// Reaching the peer (tor's SOCKS connect, AUTH, the request) may take this long, plus the
    /// stall time, before the payload starts: tor's own connect timeout is 120 s.
    static let reachAllowance: Double = 120
    private let state = Mutex(State())
    let limiters: [RateLimiter]
    /// When the attempt counts as stalled (annex.stalldetection).
    let stall: TransferGitConfig.Stall

    init(limiters: [RateLimiter], stall: TransferGitConfig.Stall = .never) {
        self.limiters = limiters
        self.stall = stall
    }

    func admit(_ want: Int) -> Int {
        limiters.reduce(want) { min($0, $1.chunk($0)) }
    }

    func moved(_ count: Int) {
        guard count > 0 else { return }
        state.withLock {
            $0.moved += Int64(count)
            $0.lastMove = RateLimiter.now()
        }
        for l in limiters { l.consume(count) }
    }

    /// Bytes moved since the meter was made.
    var moved: Int64 { state.withLock { $0.moved } }

    /// The payload (DATA) began.
    func dataStarted() { state.withLock { $0.dataStart = RateLimiter.now() } }

    /// Records a sample (call about once a second; as many are kept as stall detection needs);
    /// returns bytes per second over the last ~5 seconds.
    func sampleRate() -> Double {
        var history = 5.0
        if case .below(_, let seconds) = stall { history = max(history, seconds) }
        return state.withLock { s in
            let now = RateLimiter.now()
            s.samples.append((now, s.moved))
            s.samples.removeAll { now - $0.0 > history + 1.5 }
            guard let first = s.samples.first(where: { now - $0.0 <= 5 }), now - first.0 > 0.2 else { return 0 }
            return Double(s.moved - first.1) / (now - first.0)
        }
    }

    /// Whether the payload has moved too little under `stall`: fewer than its bytes in its last
    /// seconds, counted only once the payload has run that long; or the payload has not started
    /// within `reachAllowance` and those seconds (a peer that accepts and never answers).
    var stalled: Bool {
        guard case .below(let bytes, let seconds) = stall else { return false }
        return state.withLock { s in
            let now = RateLimiter.now()
            guard let start = s.dataStart else { return now - s.created >= Self.reachAllowance + seconds }
            guard now - start >= seconds else { return false }
            if bytes <= 1 { return now - max(s.lastMove, start) >= seconds }
            guard let base = s.samples.last(where: { now - $0.0 >= seconds }) else { return false }
            return s.moved - base.1 < bytes
        }
    }
}
