import Foundation
import Testing
@testable import AnnexdKit

/// The transfer scheduler's wake-up: a signal ends a wait early; a timeout ends it otherwise.
@Suite(.timeLimit(.minutes(1))) struct WakeSignalTests {
    static func seconds(_ body: () async -> Void) async -> Double {
        let start = Date()
        await body()
        return Date().timeIntervalSince(start)
    }

    @Test func aSignalBeforeTheWaitEndsItAtOnce() async {
        let w = WakeSignal()
        w.signal()
        #expect(await Self.seconds { await w.wait(timeout: 5) } < 1)
    }

    /// A wait woken early leaves no signal behind: the next wait lasts its timeout. (The
    /// early wait's cancelled timer used to signal anyway, so every next wait returned at once
    /// and the scheduler spun at 100% CPU while idle.)
    @Test func aWaitWokenEarlyLeavesNoSignalBehind() async throws {
        let w = WakeSignal()
        Task {
            try? await Task.sleep(nanoseconds: 50_000_000)
            w.signal()
        }
        #expect(await Self.seconds { await w.wait(timeout: 5) } < 1)
        try await Task.sleep(nanoseconds: 100_000_000)   // the cancelled timer's task has run
        #expect(await Self.seconds { await w.wait(timeout: 0.4) } >= 0.35)
    }
}
