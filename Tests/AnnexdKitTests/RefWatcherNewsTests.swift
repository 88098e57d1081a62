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

    @Test func aFastForwardToAKnownCommitIsLeftOutBesideNewOnes() {
        // A sync pull: main fast-forwards to the commit refs/remotes/peer/main already held
        // (the peer has it), the git-annex branch gets a new merge.
        let before = ["refs/heads/main": a, "refs/heads/git-annex": b, "refs/remotes/peer/main": c]
        let after = ["refs/heads/main": c, "refs/heads/git-annex": t, "refs/remotes/peer/main": c]
        #expect(RefWatcher.news(from: before, to: after) == [t])
        // Only known commits moved: they are named all the same (a peer without them fetches).
        let ffOnly = ["refs/heads/main": c, "refs/heads/git-annex": b, "refs/remotes/peer/main": c]
        #expect(RefWatcher.news(from: before, to: ffOnly) == [c])
    }

    @Test func refsNoPeerFetchesTellNothingAndDeletionsNameNothing() {
        let before = ["refs/heads/main": a]
        #expect(RefWatcher.news(from: before, to: ["refs/heads/main": a, "refs/remotes/peer/main": b]) == nil)
        #expect(RefWatcher.news(from: before, to: ["refs/heads/main": a, "refs/annex/last-index": t]) == nil)
        #expect(RefWatcher.news(from: before, to: ["refs/heads/main": a, "refs/tags/v1": b]) == [b])
        #expect(RefWatcher.news(from: ["refs/heads/main": a, "refs/heads/old": b], to: ["refs/heads/main": a]) == [])
    }
}
