import Foundation
import Synchronization
import Testing
@testable import AnnexdKit
@testable import Shared

/// Fault injection: the wall clock jumping forwards and back while a transfer waits out its
/// backoff. The queue's time is RetryClock's (the wall clock read once, moved on by a monotonic
/// clock), so the retry starts after its delay of monotonic time, whatever the wall clock says.
@Suite struct FaultClockTests {
    final class FakeClocks: Sendable {
        let wall = Mutex<Double>(1_800_000_000)
        let monotonic = Mutex<Double>(500)
        func jumpWall(_ by: Double) { wall.withLock { $0 += by } }
        func elapse(_ by: Double) { monotonic.withLock { $0 += by } }
    }

    @Test func wallClockJumpsDoNotMoveABackoff() throws {
        let fake = FakeClocks()
        let clock = RetryClock(wall: { fake.wall.withLock { $0 } }, monotonic: { fake.monotonic.withLock { $0 } })
        var q = TransferQueue()
        let peer = TransferPeer(uuid: "u-nas", name: "nas")
        let id = q.enqueue(repo: "/r", repoUUID: "r", direction: .get, key: "K1", file: nil, size: 10 << 20,
                           candidates: [peer], now: clock.now()).info.id
        var limits = TransferQueue.Limits()
        limits.retryDelay = 2
        let first = q.startNext(now: clock.now(), limits: limits)
        #expect(first?.info.id == id)
        let failure = q.fail(id, TransferFailure(code: "peer_unreachable", message: "gone"), now: clock.now(), limits: limits)
        let failed = try #require(failure)
        #expect(failed.nextRetry == 1_800_000_002, "the retry is due 2 s later, in wall terms")

        // Forwards an hour: a wall-clock queue would retry at once; this one waits.
        fake.jumpWall(3600)
        let afterJump = q.startNext(now: clock.now(), limits: limits)
        #expect(afterJump == nil, "not due after a forward jump")
        fake.elapse(1)
        let afterOneSecond = q.startNext(now: clock.now(), limits: limits)
        #expect(afterOneSecond == nil, "not due after 1 s of 2")
        // Back two hours: a wall-clock queue would wait two more hours; this one is due on time.
        fake.jumpWall(-7200)
        fake.elapse(1)
        let retried = q.startNext(now: clock.now(), limits: limits)
        #expect(retried?.info.id == id && retried?.info.attempt == 2, "due after 2 s of monotonic time")
        #expect(clock.now() == 1_800_000_002, "the queue's time followed the monotonic clock only")
    }

    @Test func theRealClockStartsAtTheWallClockAndNeverGoesBack() {
        let clock = RetryClock()
        let wall = Date().timeIntervalSince1970
        let a = clock.now(), b = clock.now()
        #expect(abs(a - wall) < 1 && b >= a)
    }
}
