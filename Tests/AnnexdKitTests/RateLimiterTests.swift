import Foundation
import Testing
@testable import AnnexdKit

/// The token bucket behind bandwidth limits: it holds a rate, and a new rate applies at once.
@Suite struct RateLimiterTests {
    /// Bytes `limiter` lets through in `seconds`, asking for `chunk` at a time.
    private func drain(_ limiter: RateLimiter, seconds: Double, chunk: Int = 256 << 10) -> Double {
        let start = RateLimiter.now()
        var total = 0
        while RateLimiter.now() - start < seconds {
            // A read returns less than it may: a third here.
            let n = max(1, limiter.chunk(chunk) / 3)
            limiter.consume(n)
            total += n
        }
        return Double(total) / (RateLimiter.now() - start)
    }

    @Test func holdsItsRateAndChangesAtOnce() {
        let l = RateLimiter(bytesPerSecond: 2 << 20)
        let slow = drain(l, seconds: 1)
        #expect(slow > 0.8 * Double(2 << 20) && slow < 1.2 * Double(2 << 20), "\(slow)")
        l.bytesPerSecond = 8 << 20
        let fast = drain(l, seconds: 1)
        #expect(fast > 0.8 * Double(8 << 20) && fast < 1.2 * Double(8 << 20), "\(fast)")
    }

    @Test func zeroMeansNoLimit() {
        let l = RateLimiter()
        #expect(l.chunk(1 << 20) == 1 << 20)
        let start = RateLimiter.now()
        for _ in 0..<100 { l.consume(1 << 30) }
        #expect(RateLimiter.now() - start < 0.5)
    }
}
