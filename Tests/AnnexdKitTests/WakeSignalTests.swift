import Foundation
import Testing
@testable import AnnexdKit

/// The transfer scheduler's wake-up: a signal ends a wait early; a timeout ends it otherwise.
/// (Async and timed: in the Makefile's second pass, where blocking tests do not starve it.)
@Suite(.timeLimit(minutes: 1)) struct WakeSignalTests {
    static func seconds(_ body: () async -> Void) async -> Double {
        let start = Date()
        await body()
        return Date().timeIntervalSince(start)
    }

    @Test func aSignalBeforeTheWaitEndsItBeforeItsTimeout() async {
        let w = WakeSignal()
        w.signal()
        #expect(await Self.seconds { await w.wait(timeout: 30) } < 20)
    }

    /// A wait ended by a signal leaves no signal behind: the next wait lasts its timeout. (The
    /// ended wait's cancelled timer used to signal anyway, so every next wait returned at once
    /// and the scheduler spun at 100% CPU, idle or not.)
    @Test func aWaitEndedBySignalLeavesNoSignalBehind() async throws {
        let w = WakeSignal()
        w.signal()
        await w.wait(timeout: 30)                       // ends on the pending signal; its timer is cancelled
        try await Task.sleep(nanoseconds: 200_000_000)   // the cancelled timer's task runs
        #expect(await Self.seconds { await w.wait(timeout: 0.4) } >= 0.35)
    }
}
