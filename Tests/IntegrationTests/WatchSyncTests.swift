#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// Watching and syncing together, with no command typed: two annexd repositories linked both
/// ways through the SOCKS stand-in, watching (and content sync) on.
@Suite(.serialized, .timeLimit(minutes: 10)) struct WatchSyncTests {
    typealias Watch = RemoteWatchTests

    /// Both sides watching (and syncing content); returns once each side's first sync settled.
    static func watching(content: Bool) throws -> SyncFixture {
        let f = try SyncFixture()
        let a = try #require(f.daemonA)
        let since = (a: try Watch.latest(a), b: try Watch.latest(f.daemonB))
        let flag = content ? "on" : "off"
        _ = try a.json("repo set --repo \(f.a) --watch on --sync-content \(flag)")
        _ = try f.daemonB.json("repo set --repo \(f.b) --watch on --sync-content \(flag)")
        for (d, from) in [(a, since.a), (f.daemonB, since.b)] {
            #expect(try Watch.waitFor(d, "remote.connected", since: from, timeout: 15) != nil, "no remote.connected")
            // The first answer is news: a first sync runs; let it end.
            #expect(try Watch.waitFor(d, "sync.finished", since: from, timeout: 30) != nil, "no first sync")
        }
        // Both first syncs ran at once and each merged the other's git-annex branch; the
        // deferring side takes the other's merge a moment later. Tests start once neither
        // has synced for 2 s.
        let settled = try within(20) {
            let marks = (a: try Watch.latest(a), b: try Watch.latest(f.daemonB))
            usleep(2_000_000)
            return try Watch.events(a, "sync.started", since: marks.a).isEmpty && Watch.events(f.daemonB, "sync.started", since: marks.b).isEmpty
        }
        #expect(settled != nil, "the two repositories kept syncing for 20 s after watching began")
        return f
    }

    /// Polls (every 50 ms) until `done` or `timeout` seconds; the seconds it took, nil on timeout.
    static func within(_ timeout: Double, _ done: () throws -> Bool) rethrows -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < timeout {
            if try done() { return Date().timeIntervalSince(start) }
            usleep(50_000)
        }
        return nil
    }

    @Test func aCommitAndItsContentReachTheOtherSideByThemselves() throws {
        let f = try Self.watching(content: true)
        let a = try #require(f.daemonA)

        // A commit with a new annexed file on A: on B's current branch within 5 s, then its content.
        let commit = try f.commit("fresh", in: f.a)
        let took = Self.within(5) { f.has(commit, of: f.b) }
        #expect(took != nil, "A's commit did not reach B's branch within 5 s")
        let key = try AnnexLookups.key("fresh", in: f.a)
        let uuidB = try f.uuid(f.b)
        #expect(try Self.within(20) { try AnnexLookups.whereis(key, in: f.b, annex: f.annex).contains(uuidB) } != nil,
                "the content of fresh did not arrive on B")
        #expect(FileManager.default.contents(atPath: f.b + "/fresh") == Data("fresh\n".utf8))

        // And the other way: a commit on B reaches A.
        let sinceA = try Watch.latest(a)
        let back = try f.commit("back", in: f.b)
        #expect(Self.within(5) { f.has(back, of: f.a) } != nil, "B's commit did not reach A's branch within 5 s")
        let finished = try Watch.waitFor(a, "sync.finished", since: sinceA, timeout: 20) { $0["gets"]?.intValue ?? 0 > 0 }
        #expect(finished != nil, "A's sync.finished never counted a get")
    }

    /// A burst of 50 commits on A within a second gives B at most two syncs.
    @Test func aBurstOfCommitsGivesAtMostTwoSyncs() throws {
        let f = try Self.watching(content: false)
        let a = try #require(f.daemonA)
        usleep(1_000_000)
        let since = try Watch.latest(f.daemonB), sinceA = try Watch.latest(a)
        // The 50 commits are made first (commit-tree writes objects, no ref), then the branch
        // moves through all of them in one `git update-ref --stdin`: 50 ref updates, each its own
        // transaction, in a few milliseconds. (Fifty `git commit`s took over a second on a loaded
        // machine, and a pause of more than the watcher's quiet time inside the burst made a
        // third sync: the burst the test is about had not happened.)
        let script = """
            branch=$(git symbolic-ref HEAD); parent=$(git rev-parse HEAD); tree=$(git rev-parse 'HEAD^{tree}')
            for i in $(seq 50); do
              c=$(git commit-tree "$tree" -p "$parent" -m "burst$i")
              printf 'start\nupdate %s %s %s\ncommit\n' "$branch" "$c" "$parent" >> .git/burst
              parent=$c
            done
            """
        try sh(script, in: f.a, annex: f.annex)
        let start = Date()
        try sh("git update-ref --stdin < .git/burst && rm .git/burst", in: f.a)
        let last = try sh("git rev-parse HEAD", in: f.a).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(Date().timeIntervalSince(start) < 1, "the burst took \(Date().timeIntervalSince(start)) s")
        #expect(Self.within(15) { f.has(last, of: f.b) } != nil, "the burst's last commit did not reach B")
        usleep(4_000_000)
        let syncs = try Watch.events(f.daemonB, "sync.started", since: since)
        let changes = try Watch.events(f.daemonB, "remote.changed", since: since).map { "\($0["time"]!) \($0["refs"]!)" }
        #expect((1...2).contains(syncs.count), "\(syncs.count) syncs for a burst of 50 commits: \(syncs.map { $0["time"]! }); changes: \(changes)")
        // A watches B too. B's pull moved B's refs to commits A made, which is not news to A:
        // the two do not pull back and forth (they did, a sync each ~0.7 s, before A checked).
        let syncsA = try Watch.events(a, "sync.started", since: sinceA)
        #expect(syncsA.count <= 1, "A pulled back \(syncsA.count) times: \(syncsA.map { $0["time"]! })")
    }
}
