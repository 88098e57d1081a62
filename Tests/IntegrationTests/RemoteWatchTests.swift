#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// Watching peers: annexd keeps a NOTIFYCHANGE connection to each tor-annex remote of a
/// repository with watching on (repo.set), through the SOCKS stand-in, and reports
/// remote.connected / remote.changed / remote.disconnected. Peers: another annexd, and stock
/// `git annex remotedaemon` of each version.
@Suite(.serialized, .timeLimit(minutes: 10)) struct RemoteWatchTests {
    typealias Annexd = DaemonTorAnnexTests.Annexd

    /// Events of `type` after id `since` (those already published).
    static func events(_ d: Annexd, _ type: String, since: Int) throws -> [JSONValue] {
        try d.cli("events --since \(since) --json").split(separator: "\n").compactMap {
            try? JSONValue(parsing: String($0))
        }.filter { $0["type"]?.stringValue == type && Int($0["id"]?.intValue ?? 0) > since }
    }

    /// The first event of `type` after `since` that `match` accepts, waiting up to `timeout` seconds.
    static func waitFor(_ d: Annexd, _ type: String, since: Int, timeout: Double,
                        _ match: (JSONValue) -> Bool = { _ in true }) throws -> JSONValue? {
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            if let e = try events(d, type, since: since).first(where: match) { return e }
            usleep(100_000)
        } while Date() < deadline
        return nil
    }

    static func latest(_ d: Annexd) throws -> Int {
        Int(try d.process.call("daemon.status")["latest_event"]?.intValue ?? 0)
    }

    /// Links the fixture's client repository (served by `f.daemon`) from the server repository
    /// (served by `f.serving`) as remote `back`: the two annexd repositories linked both ways.
    static func linkBack(_ f: TransferFixture) throws {
        let serving = try #require(f.serving)
        let info = try f.daemon.process.call("repo.info", ["repo": .string(f.client)])
        try f.net.map("\(info["onion"]!.stringValue!):\(info["port"]!.intValue!)", to: info["socket"]!.stringValue!)
        let address = try #require(try f.daemon.json("invite --repo \(f.client) --name server")["address"]?.stringValue)
        _ = try serving.process.call("peer.link", ["repo": .string(f.server), "name": "back", "address": .string(address)])
    }

    @Test func twoAnnexdLinkedBothWays() throws {
        let f = try TransferFixture(files: ["a": 10])
        let serving = try #require(f.serving)
        try Self.linkBack(f)

        // Off by default (no annex.autosync): repo.info says so, and nothing is watched.
        let before = try f.daemon.process.call("repo.info", ["repo": .string(f.client)])
        #expect(before["settings"]?["watch"] == false && before["settings"]?["set"] == [], "\(before)")
        #expect(before["settings"]?["remotes"]?[0]?["skipped"]?.stringValue == "watch off", "\(before)")
        #expect(before["settings"]?["remotes"]?[0]?["connected"] == nil, "not watched: no connected field \(before)")

        var since = try Self.latest(f.daemon)
        let set = try f.daemon.json("repo set --repo \(f.client) --watch on")
        #expect(set["watch"] == true && set["set"] == ["watch"] && set["remotes"]?[0]?["watched"] == true, "\(set)")
        _ = try serving.json("repo set --repo \(f.server) --watch on")
        let connected = try #require(try Self.waitFor(f.daemon, "remote.connected", since: since, timeout: 15), "no remote.connected")
        #expect(connected["peer"]?["name"]?.stringValue == "peer" && connected["peer"]?["uuid"]?.stringValue == f.serverUUID,
                "\(connected)")
        #expect(connected["repo"]?.stringValue == f.client)
        // repo.info says so too (a client opening now need not wait for the next event).
        let after = try f.daemon.process.call("repo.info", ["repo": .string(f.client)])
        #expect(after["settings"]?["remotes"]?[0]?["connected"] == true, "\(after)")
        let text = try f.daemon.cli("repo info --repo \(f.client)")
        #expect(text.contains("remote peer: watched, connected"), "\(text)")
        #expect(try Self.waitFor(serving, "remote.connected", since: 0, timeout: 15) != nil, "the server side watches too")
        // The first answer (never seen before) is news; wait for it to pass.
        _ = try Self.waitFor(f.daemon, "remote.changed", since: since, timeout: 10)

        // A commit on B (the server) reaches A's watcher within 5 s.
        since = try Self.latest(f.daemon)
        let committed = Date()
        try sh("echo hi > note && git add note && git commit -qm note", in: f.server, annex: f.annex)
        let note = try sh("git rev-parse HEAD", in: f.server).trimmingCharacters(in: .whitespacesAndNewlines)
        let changed = try #require(try Self.waitFor(f.daemon, "remote.changed", since: since, timeout: 5) {
            $0["refs"]?.arrayValue?.contains(.string(note)) == true
        }, "no remote.changed naming the new commit within 5 s")
        #expect(Date().timeIntervalSince(committed) < 5)
        #expect(changed["peer"]?["name"]?.stringValue == "peer", "\(changed)")
        // The change is pulled here (watching syncs): let that sync end before committing here.
        #expect(try Self.waitFor(f.daemon, "sync.finished", since: since, timeout: 30) != nil, "no sync after the change")
        // And a commit on A reaches B's.
        let servingSince = try Self.latest(serving)
        try sh("echo hi > back && git add back && git commit -qm back", in: f.client, annex: f.annex)
        #expect(try Self.waitFor(serving, "remote.changed", since: servingSince, timeout: 5) { $0["peer"]?["name"]?.stringValue == "back" } != nil)
        // Let the syncs these changes started end (B's pull of A, then A's of B's merge), so
        // killing B below does not leave a git lock behind in its repository.
        #expect(try Self.waitFor(serving, "sync.finished", since: servingSince, timeout: 30) != nil)
        usleep(1_500_000)
        _ = try Self.waitFor(f.daemon, "sync.finished", since: since, timeout: 30)

        // B stops: A says why, and when it tries again.
        since = try Self.latest(f.daemon)
        serving.kill9()
        let gone = try #require(try Self.waitFor(f.daemon, "remote.disconnected", since: since, timeout: 10), "no remote.disconnected")
        #expect(["connection_lost", "peer_unreachable", "protocol_error"].contains(gone["reason"]?.stringValue ?? ""), "\(gone)")
        #expect((gone["message"]?.stringValue ?? "").isEmpty == false)
        let retry = try #require(gone["next_retry"]?.doubleValue, "\(gone)")
        #expect(retry > Date().timeIntervalSince1970 - 5 && retry < Date().timeIntervalSince1970 + 70, "\(gone)")

        // B comes back: A reconnects within the backoff (a few doublings of 1 s while B was away),
        // and a commit made on B while it was away is news on A.
        try sh("echo away > away && git add away && git commit -qm away", in: f.server, annex: f.annex)
        let away = try sh("git rev-parse HEAD", in: f.server).trimmingCharacters(in: .whitespacesAndNewlines)
        usleep(2_000_000)
        since = try Self.latest(f.daemon)
        try serving.start()
        let back = try Self.waitFor(f.daemon, "remote.connected", since: since, timeout: 20)
        #expect(back?["peer"]?["name"]?.stringValue == "peer", "no remote.connected after B returned")
        let news = try Self.waitFor(f.daemon, "remote.changed", since: since, timeout: 5)
        #expect(news?["refs"]?.arrayValue?.contains(.string(away)) == true, "\(String(describing: news))")

        // B restarts again with nothing new: a reconnect, and no remote.changed (annexd names SHAs).
        since = try Self.latest(f.daemon)
        serving.kill9()
        _ = try Self.waitFor(f.daemon, "remote.disconnected", since: since, timeout: 10)
        try serving.start()
        #expect(try Self.waitFor(f.daemon, "remote.connected", since: since, timeout: 20) != nil)
        usleep(1_000_000)
        #expect(try Self.events(f.daemon, "remote.changed", since: since).isEmpty, "a reconnect with nothing new triggered")

        // Watching off: the watcher stops and says so; nothing is retried.
        since = try Self.latest(f.daemon)
        let off = try f.daemon.json("repo set --repo \(f.client) --watch off")
        #expect(off["watch"] == false && off["remotes"]?[0]?["watched"] == false)
        let stopped = try Self.waitFor(f.daemon, "remote.disconnected", since: since, timeout: 10)
        #expect(stopped?["reason"]?.stringValue == "stopped" && stopped?["next_retry"] == .null, "\(String(describing: stopped))")
        usleep(1_500_000)
        #expect(try Self.events(f.daemon, "remote.connected", since: since).isEmpty, "watching off must not redial")
    }

    @Test(arguments: TestEnvironment.gitAnnexVersions)
    func stockRemotedaemonChangesReachTheWatcher(_ annex: TestEnvironment.GitAnnex) throws {
        let f = try TransferFixture(files: ["a": 10], annex: annex, serveWithAnnexd: false)
        // git-annex's own setting turns watching on (no repo.set).
        try sh("git config annex.autosync true", in: f.client)
        var since = try Self.latest(f.daemon)
        _ = try f.daemon.process.call("repo.set", ["repo": .string(f.client), "sync_content": false])
        let info = try f.daemon.process.call("repo.info", ["repo": .string(f.client)])
        #expect(info["settings"]?["watch"] == true && info["settings"]?["set"] == ["sync_content"], "\(info)")
        #expect(try Self.waitFor(f.daemon, "remote.connected", since: since, timeout: 15) != nil, "\(annex): no remote.connected")
        _ = try Self.waitFor(f.daemon, "remote.changed", since: since, timeout: 10)

        since = try Self.latest(f.daemon)
        try sh("echo hi > note && git add note && git commit -qm note", in: f.server, annex: annex)
        let changed = try Self.waitFor(f.daemon, "remote.changed", since: since, timeout: 10)
        #expect(changed != nil, "\(annex): no remote.changed after a commit on the stock side")
        // git-annex names commit SHAs: the new commit is among them.
        let head = try sh("git rev-parse HEAD", in: f.server).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(changed?["refs"]?.arrayValue?.contains(.string(head)) == true, "\(String(describing: changed))")
    }

    /// Stock remotedaemon (serving `a`) and annexd (serving `b`) linked both ways: the stock
    /// remotedaemon, dialling 127.0.0.1:9050 in the onion network's namespace, keeps a
    /// NOTIFYCHANGE connection to annexd and fetches annexd's commit; annexd, watching, merges
    /// the stock side's commit into its current branch.
    @Test(.enabled(if: getuid() == 0, "stock remotedaemon needs root (a mount namespace for /etc/tor/torrc, a network namespace for its 9050)"),
          arguments: TestEnvironment.gitAnnexVersions)
    func stockRemotedaemonAndAnnexdSeeEachOthersCommits(_ annex: TestEnvironment.GitAnnex) throws {
        let f = try SyncFixture(annex: annex, stockA: true)
        let stock = try #require(f.stock)
        try f.linkStockBack()
        // remotedaemon's own NOTIFYCHANGE to annexd (it sends none before: `a` had no remote).
        let dialled = SyncFixture.within(15) {
            ((try? String(contentsOfFile: stock.logPath, encoding: .utf8)) ?? "").contains("P2P > NOTIFYCHANGE")
        }
        #expect(dialled != nil, "\(annex): stock remotedaemon never sent NOTIFYCHANGE to annexd")

        // annexd's commit: the stock side has it in refs/remotes/b/main within 10 s, with nothing typed.
        let fromB = try f.commit("two", in: f.b)
        let fetched = SyncFixture.within(10) { f.has(fromB, in: "refs/remotes/b/main", of: f.a) }
        if fetched == nil {
            let log = ((try? String(contentsOfFile: stock.logPath, encoding: .utf8)) ?? "").split(separator: "\n").suffix(40)
            Issue.record("\(annex): stock remotedaemon did not fetch annexd's commit within 10 s; its log ends:\n\(log.joined(separator: "\n"))")
        }

        // Watching on in annexd: the stock side's commit is merged into b's branch within 5 s.
        let since = try Self.latest(f.daemonB)
        _ = try f.daemonB.json("repo set --repo \(f.b) --watch on")
        #expect(try Self.waitFor(f.daemonB, "remote.connected", since: since, timeout: 15) != nil, "\(annex): no remote.connected")
        _ = try Self.waitFor(f.daemonB, "sync.finished", since: since, timeout: 10)
        let fromA = try f.commit("three", in: f.a)
        // Within 5 s, though annexd may hold back after its first sync: the one with the greater
        // UUID waits out the other's pull after its own (ChangeDebouncer's `defers`).
        let merged = SyncFixture.within(TestEnvironment.seconds(5)) { f.has(fromA, of: f.b) }
        #expect(merged != nil, "\(annex): annexd did not merge the stock side's commit within \(TestEnvironment.seconds(5)) s")
        print("\(annex): stock remotedaemon fetched annexd's commit in \(fetched ?? -1) s; annexd merged the stock commit in \(merged ?? -1) s")
    }

    @Test func aRemoteWithAnnexSyncFalseIsLeftAlone() throws {
        let f = try TransferFixture(files: ["a": 10])
        try sh("git config remote.peer.annex-sync false", in: f.client)
        let since = try Self.latest(f.daemon)
        let s = try f.daemon.json("repo set --repo \(f.client) --watch on")
        #expect(s["remotes"]?[0]?["watched"] == false && s["remotes"]?[0]?["skipped"]?.stringValue == "annex-sync=false", "\(s)")
        usleep(2_000_000)
        #expect(try Self.events(f.daemon, "remote.connected", since: since).isEmpty)
        // Human output says the same.
        let text = try f.daemon.cli("repo info --repo \(f.client)")
        #expect(text.contains("watch:        on (set)") && text.contains("remote peer: not watched (annex-sync=false)"), "\(text)")
    }

    @Test func badInputIsRefusedClearly() throws {
        let f = try TransferFixture(files: ["a": 10])
        let unknown = try f.daemon.process.response("repo.set", ["repo": "/nowhere", "watch": true])
        #expect(unknown["error"]?["data"]?["reason"]?.stringValue == "repo_not_found", "\(unknown)")
        let bad = try f.daemon.process.response("repo.set", ["repo": .string(f.client), "watch": "on"])
        #expect(bad["error"]?["code"]?.intValue == -32602, "\(bad)")
        #expect((bad["error"]?["message"]?.stringValue ?? "").contains("watch"), "\(bad)")
        let typo = try f.daemon.process.response("repo.set", ["repo": .string(f.client), "wach": true])
        #expect((typo["error"]?["message"]?.stringValue ?? "").contains("unknown member"), "\(typo)")

        let cliBad = try f.daemon.cli("repo set --repo \(f.client) --watch maybe 2>&1", allowFailure: true)
        #expect(cliBad.contains("maybe") && cliBad.contains("--watch"), "\(cliBad)")
        let cliNothing = try f.daemon.cli("repo set --repo \(f.client) 2>&1", allowFailure: true)
        #expect(cliNothing.contains("nothing to change"), "\(cliNothing)")
        let cliUnknown = try f.daemon.cli("repo set --repo /nowhere --watch on --json", allowFailure: true)
        #expect(cliUnknown.contains("repo_not_found"), "\(cliUnknown)")
        // Back to the default with `default`.
        _ = try f.daemon.json("repo set --repo \(f.client) --sync-content on")
        let reset = try f.daemon.json("repo set --repo \(f.client) --sync-content default")
        #expect(reset["sync_content"] == false && reset["set"] == [], "\(reset)")
    }
}

extension RemoteWatchTests {
    /// The daemon's open descriptors and threads.
    static func resources(_ d: Annexd) throws -> (fds: Int, threads: Int) {
        let pid = d.process.pid
        return (try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count,
                try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task").count)
    }

    /// Turning watching on and off again, and removing a watched repository, leave no thread
    /// or descriptor behind.
    @Test func watchingOffAndRepoRemovalLeaveNothingBehind() throws {
        let f = try TransferFixture(files: ["a": 10])
        usleep(500_000)
        let baseline = try Self.resources(f.daemon)
        for _ in 0..<3 {
            let since = try Self.latest(f.daemon)
            _ = try f.daemon.json("repo set --repo \(f.client) --watch on")
            #expect(try Self.waitFor(f.daemon, "remote.connected", since: since, timeout: 15) != nil)
            let watching = try Self.resources(f.daemon)
            #expect(watching.fds > baseline.fds && watching.threads >= baseline.threads + 2, "\(baseline) → \(watching)")
            _ = try f.daemon.json("repo set --repo \(f.client) --watch off")
            #expect(try Self.waitFor(f.daemon, "remote.disconnected", since: since, timeout: 10) { $0["reason"] == "stopped" } != nil)
        }
        usleep(1_000_000)
        let after = try Self.resources(f.daemon)
        #expect(after.fds <= baseline.fds && after.threads <= baseline.threads + 1, "\(baseline) → \(after)")

        // A watched repository removed from annexd: its watcher stops too.
        let since = try Self.latest(f.daemon)
        _ = try f.daemon.json("repo set --repo \(f.client) --watch on")
        #expect(try Self.waitFor(f.daemon, "remote.connected", since: since, timeout: 15) != nil)
        _ = try f.daemon.json("repo remove --repo \(f.client)")
        #expect(try Self.waitFor(f.daemon, "remote.disconnected", since: since, timeout: 10) { $0["reason"] == "stopped" } != nil)
        usleep(1_000_000)
        let removed = try Self.resources(f.daemon)
        #expect(removed.fds <= baseline.fds && removed.threads <= baseline.threads + 1, "\(baseline) → \(removed)")
        // Its settings went with it: added again, it is not watched.
        _ = try f.daemon.json("repo add \(f.client)")
        let info = try f.daemon.process.call("repo.info", ["repo": .string(f.client)])
        #expect(info["settings"]?["watch"] == false && info["settings"]?["set"] == [], "\(info)")
    }
}
