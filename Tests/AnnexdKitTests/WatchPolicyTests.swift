import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// The watcher's pure parts: reconnect delays, debouncing, what counts as news, and the
/// per-repository settings with their git-config defaults.
@Suite struct WatchPolicyTests {
    // MARK: Commits already here

    /// A CHANGED naming only commits the repository's branches hold brings nothing to pull
    /// (the remote took them from here); anything else is news.
    @Test func commitsTheBranchesHoldAreNotNews() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("annexd-hold-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let env = ["GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
                   "GIT_COMMITTER_EMAIL": "t@example.invalid", "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        func git(_ args: String...) throws -> String {
            let r = try Command.run(["git"] + args, cwd: dir, environment: env)
            #expect(r.status == 0, "git \(args): \(r.stderr)")
            return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        _ = try git("init", "-q")
        _ = try git("commit", "-q", "--allow-empty", "-m", "one")
        let one = try git("rev-parse", "HEAD")
        _ = try git("commit", "-q", "--allow-empty", "-m", "two")
        let two = try git("rev-parse", "HEAD")
        // A commit only an unmerged ref points at is not held by a branch.
        let loose = try git("commit-tree", try git("rev-parse", "HEAD^{tree}"), "-p", two, "-m", "elsewhere")
        _ = try git("update-ref", "refs/remotes/peer/main", loose)
        #expect(RemoteWatchService.branchesHold([two], repo: dir))
        #expect(RemoteWatchService.branchesHold([one, two], repo: dir))
        #expect(!RemoteWatchService.branchesHold([two, loose], repo: dir))
        #expect(!RemoteWatchService.branchesHold([String(repeating: "ab", count: 20)], repo: dir), "a commit not here")
        #expect(!RemoteWatchService.branchesHold(["refs/heads/main"], repo: dir), "a ref name says nothing of its commit")
        #expect(!RemoteWatchService.branchesHold([], repo: dir))
    }

    // MARK: Backoff

    @Test func delaysDoubleUpToTheCap() {
        var b = ReconnectBackoff(initial: 1, cap: 30, jitter: 0.2)
        // random 0.5: no jitter.
        let delays = (0..<8).map { _ in b.failed(random: 0.5) }
        #expect(delays == [1, 2, 4, 8, 16, 30, 30, 30])
        b.connected()
        #expect(b.failed(random: 0.5) == 1)
    }

    @Test func jitterSpreadsWithinBoundsAndNeverPassesTheCap() {
        for failures in 0..<40 {
            for r in [0.0, 0.25, 0.999] {
                var b = ReconnectBackoff(initial: 1, cap: 60, jitter: 0.2)
                for _ in 0..<failures { _ = b.failed(random: 0.5) }
                let base = min(60, pow(2, Double(failures)))
                let d = b.failed(random: r)
                #expect(d >= base * 0.8 - 1e-9 && d <= min(60, base * 1.2) + 1e-9, "failures \(failures), r \(r): \(d)")
            }
        }
        var lo = ReconnectBackoff(initial: 1, cap: 60, jitter: 0.2), hi = lo
        let (low, high) = (lo.failed(random: 0), hi.failed(random: 0.999))
        #expect(low < high)
    }

    // MARK: Debouncer

    /// Drives a debouncer with changes at the given times, polling as a trigger thread would.
    private func triggers(_ times: [Double], until end: Double, _ d: inout ChangeDebouncer) -> [Double] {
        var fired: [Double] = []
        var t = 0.0, i = 0
        while t <= end {
            while i < times.count && times[i] <= t { d.changed(at: times[i]); i += 1 }
            if d.fire(at: t) { fired.append(t) }
            t += 0.001
        }
        return fired
    }

    @Test func fiftyChangesInASecondGiveAtMostTwoTriggers() {
        var d = ChangeDebouncer(quiet: 0.5, maxDelay: 3)
        let times = (0..<50).map { Double($0) * 0.02 }
        let fired = triggers(times, until: 5, &d)
        #expect(fired.count >= 1 && fired.count <= 2, "\(fired)")
        #expect(fired.first.map { $0 < 0.01 } == true, "the first change triggers at once: \(fired)")
        #expect(fired.last.map { $0 >= 0.98 } == true, "the last change is covered: \(fired)")
    }

    @Test func separateChangesEachTriggerAtOnce() {
        var d = ChangeDebouncer(quiet: 0.5, maxDelay: 3)
        let fired = triggers([0, 2, 4], until: 5, &d)
        #expect(fired.count == 3 && zip(fired, [0.0, 2, 4]).allSatisfy { abs($0 - $1) < 0.01 }, "\(fired)")
    }

    @Test func aSteadyStreamTriggersEveryMaxDelay() {
        var d = ChangeDebouncer(quiet: 0.5, maxDelay: 3)
        let fired = triggers((0..<100).map { Double($0) * 0.1 }, until: 12, &d)
        // At once, then at most every 3 s while the stream lasts, then once after it.
        #expect(fired.count >= 4 && fired.count <= 6, "\(fired)")
        for (a, b) in zip(fired, fired.dropFirst()) { #expect(b - a <= 3.6, "\(fired)") }
    }

    /// Of two repositories watching each other, the deferring one waits out the other's wait
    /// and pull (`quiet` plus twice its own last sync) before acting on what the other says;
    /// the other acts at once.
    @Test func theDeferringSideWaitsOutTheOthersPull() {
        var d = ChangeDebouncer(quiet: 0.5, maxDelay: 3, defers: true)
        d.changed(at: 0)
        let fired1 = d.fire(at: 0)
        #expect(fired1)
        d.finished(at: 2, took: 2)
        d.changed(at: 2.1)
        let fired2 = d.fire(at: 6.45)
        #expect(!fired2)
        let fired3 = d.fire(at: 6.5)
        #expect(fired3)
        var other = ChangeDebouncer(quiet: 0.5, maxDelay: 3)
        other.changed(at: 0)
        _ = other.fire(at: 0)
        other.finished(at: 2, took: 2)
        other.changed(at: 2.1)
        let fired4 = other.fire(at: 2.1)
        #expect(fired4)
        // Long after a quick sync's hold, a change fires at once.
        var quick = ChangeDebouncer(quiet: 0.5, maxDelay: 3, defers: true)
        quick.changed(at: 0)
        _ = quick.fire(at: 0)
        quick.finished(at: 0.1, took: 0.1)
        quick.changed(at: 5)
        let fired5 = quick.fire(at: 5)
        #expect(fired5, "long after the hold, a change fires at once")
    }

    @Test func nothingPendingNeverFires() {
        var d = ChangeDebouncer()
        #expect(d.deadline == nil)
        let fired = d.fire(at: 100)
        #expect(!fired)
    }

    // MARK: What is news

    static let sha1 = String(repeating: "a", count: 40), sha2 = String(repeating: "b", count: 40)

    @Test func aReconnectWithNothingNewIsNotNews() {
        var m = ChangeMemory()
        let r1 = m.report([Self.sha1], first: true)
        #expect(r1, "never seen: news")
        let r2 = m.report([Self.sha2], first: false)
        #expect(r2, "a later CHANGED naming a new commit is news")
        let again = m.report([Self.sha1], first: false)
        #expect(!again, "a later CHANGED naming only commits already reported (a ref moved to one) is not")
        // Reconnect: the remote reports all it has, all of it seen.
        let r3 = m.report([Self.sha1, Self.sha2], first: true)
        #expect(!r3)
        let r4 = m.report([Self.sha2], first: true)
        #expect(!r4)
        let c = String(repeating: "c", count: 64)
        let r5 = m.report([Self.sha2, c], first: true)
        #expect(r5, "a SHA not seen before: news")
    }

    @Test func refNamesCannotTellSoAReconnectIsNews() {
        var m = ChangeMemory()
        let r6 = m.report(["refs/heads/main"], first: true)
        #expect(r6)
        let r7 = m.report(["refs/heads/main"], first: true)
        #expect(r7, "a ref name says nothing of its value")
        let later = m.report(["refs/heads/main"], first: false)
        #expect(later)
    }

    @Test func memoryIsBounded() {
        var m = ChangeMemory()
        let shas = (0...ChangeMemory.limit + 1).map { String(format: "%040x", $0) }
        for sha in shas { _ = m.report([sha], first: false) }
        #expect((m.seen?.count ?? 0) <= ChangeMemory.limit + 1)
        let newest = m.report([shas.last!], first: false)
        #expect(!newest, "what was just said is remembered")
    }

    @Test func memoryPersists() throws {
        let path = TransferSettingsTests.scratchFile() + ".memory"
        let store = ChangeMemoryStore(path: path)
        var m = store.memory("r x")
        _ = m.report([Self.sha1], first: true)
        try store.remember("r x", m)
        var again = ChangeMemoryStore(path: path).memory("r x")
        let r8 = again.report([Self.sha1], first: true)
        #expect(!r8)
        store.forget(repo: "r")
        #expect(store.memory("r x").seen == nil)
    }

    // MARK: Settings

    @Test func gitConfigDefaults() {
        let git = WatchGitConfig(listing: """
            annex.autosync true
            annex.synccontent off
            remote.nas.annex-sync false
            remote.Cloud.annex-ignore
            remote.laptop.annex-sync yes
            annex.autosync-bogus 1
            """)
        #expect(git.autosync == true && git.syncContent == false)
        #expect(git.skipReason(remote: "nas") == "annex-sync=false")
        #expect(git.skipReason(remote: "Cloud") == "annex-ignore")
        #expect(git.skipReason(remote: "laptop") == nil)
        #expect(WatchGitConfig(listing: "annex.autosync maybe").autosync == nil, "a value git refuses is ignored")
    }

    @Test func setValuesWinAndNullGoesBackToTheDefault() throws {
        let path = TransferSettingsTests.scratchFile() + ".repo"
        let store = RepoSettingsStore(path: path)
        var git = WatchGitConfig()
        git.autosync = true
        #expect(RepoSettingsStore.effective(store.overrides("u"), git: git) == RepoSettings(watch: true, syncContent: false, set: []))
        _ = try store.update("u", watch: .set(false), syncContent: .set(true))
        let reread = RepoSettingsStore(path: path)
        #expect(RepoSettingsStore.effective(reread.overrides("u"), git: git)
                == RepoSettings(watch: false, syncContent: true, set: ["watch", "sync_content"]))
        _ = try reread.update("u", watch: .reset, syncContent: .unchanged)
        #expect(RepoSettingsStore.effective(reread.overrides("u"), git: git)
                == RepoSettings(watch: true, syncContent: true, set: ["sync_content"]))
        reread.forget("u")
        #expect(RepoSettingsStore(path: path).overrides("u") == .init())
    }

    @Test func repoSetParamsRefuseBadValues() throws {
        let ok = try RepoSet.Params(json: ["repo": "/r", "watch": true, "sync_content": .null], path: "params")
        #expect(ok.watch == .set(true) && ok.syncContent == .reset)
        #expect(try RepoSet.Params(json: ["repo": "/r"], path: "params").watch == .unchanged)
        #expect(throws: JSONDecodingError.self) { try RepoSet.Params(json: ["repo": "/r", "watch": "on"], path: "params") }
        #expect(throws: JSONDecodingError.self) { try RepoSet.Params(json: ["repo": "/r", "watchh": true], path: "params") }
    }
}
