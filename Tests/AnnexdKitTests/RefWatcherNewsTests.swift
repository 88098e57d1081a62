import Testing
@testable import AnnexdKit

/// What annexd's CHANGED names (RefWatcher.news): stock remotedaemon fetches only when it
/// knows none of the SHAs, so a CHANGED must not name one it has beside the news.
@Suite struct RefWatcherNewsTests {
    let a = String(repeating: "a", count: 40), b = String(repeating: "b", count: 40)
    let c = String(repeating: "c", count: 40), t = String(repeating: "e", count: 40)

    @Test func aCommitNamesTheNewSHAsOnly() {
        let before = ["refs/heads/main": a, "refs/heads/git-annex": b]
        // git annex add + git commit: main and git-annex move, and refs/annex/last-index
        // appears holding a tree the peer has too.
        let after = ["refs/heads/main": c, "refs/heads/git-annex": t, "refs/annex/last-index": a]
        #expect(RefWatcher.news(from: before, to: after) == [c, t])
    }

    @Test func aBranchCatchingUpWithAnotherIsLeftOutBesideNewOnes() {
        // git annex sync: main gets a new commit, synced/main catches up with what main held.
        let before = ["refs/heads/main": a, "refs/heads/synced/main": b, "refs/heads/git-annex": t]
        let after = ["refs/heads/main": c, "refs/heads/synced/main": a, "refs/heads/git-annex": t]
        #expect(RefWatcher.news(from: before, to: after) == [c])
        // Only held commits moved: they are named all the same (a peer without them fetches).
        let caughtUp = ["refs/heads/main": a, "refs/heads/synced/main": a, "refs/heads/git-annex": t]
        #expect(RefWatcher.news(from: before, to: caughtUp) == [a])
    }

    @Test func aCommitHeldOnlyByARemoteTrackingRefIsNamedWhenABranchTakesIt() {
        // A sync pull: main fast-forwards to what refs/remotes/peer/main held. It was never
        // named (no peer fetches remote-tracking refs), so it is now: a client remembering what
        // it was told must know every SHA a reconnect's first answer lists.
        let before = ["refs/heads/main": a, "refs/heads/git-annex": b, "refs/remotes/peer/main": c]
        let after = ["refs/heads/main": c, "refs/heads/git-annex": t, "refs/remotes/peer/main": c]
        #expect(RefWatcher.news(from: before, to: after) == [c, t])
    }

    @Test func refsNoPeerFetchesTellNothingAndDeletionsNameNothing() {
        let before = ["refs/heads/main": a]
        #expect(RefWatcher.news(from: before, to: ["refs/heads/main": a, "refs/remotes/peer/main": b]) == nil)
        #expect(RefWatcher.news(from: before, to: ["refs/heads/main": a, "refs/annex/last-index": t]) == nil)
        #expect(RefWatcher.news(from: before, to: ["refs/heads/main": a, "refs/tags/v1": b]) == [b])
        #expect(RefWatcher.news(from: ["refs/heads/main": a, "refs/heads/old": b], to: ["refs/heads/main": a]) == [])
    }
}
