#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// sync.run (and annex-cli sync) between two annexd daemons linked both ways, and against
/// stock `git annex remotedaemon` of each version, through the SOCKS stand-in.
@Suite(.serialized, .timeLimit(minutes: 10)) struct SyncTests {
    @Test(arguments: TestEnvironment.gitAnnexVersions)
    func pullAndPushBetweenTwoAnnexd(annex: TestEnvironment.GitAnnex) throws {
        let f = try SyncFixture(annex: annex)
        let daemonA = try #require(f.daemonA)
        let uuidA = try f.uuid(f.a), uuidB = try f.uuid(f.b)

        // Pull: A's commit (and what A's git-annex branch says) reaches B.
        let fromA = try f.commit("two", in: f.a)
        let r = try f.sync(f.b, on: f.daemonB)
        let result = try #require(r["result"], "\(r)")
        #expect(result["merged"]?.boolValue == true, "\(r)")
        let peer = try #require(result["peers"]?[0])
        #expect(peer["name"]?.stringValue == "a" && peer["uuid"]?.stringValue == uuidA, "\(r)")
        #expect(peer["pulled"]?.boolValue == true && peer["error"] == nil, "\(r)")
        #expect(f.has(fromA, of: f.b), "B's branch has A's commit")
        let key = try AnnexLookups.key("two", in: f.b)
        #expect(try AnnexLookups.whereis(key, in: f.b, annex: f.annex) == [uuidA], "B's git-annex branch knows A has it")

        // Push: B's commit lands on A as synced/main; A's own sync merges it.
        let fromB = try f.commit("three", in: f.b)
        let pushed = try #require(try f.sync(f.b, on: f.daemonB, ["direction": "push"])["result"])
        #expect(pushed["peers"]?[0]?["pushed"]?.boolValue == true && pushed["merged"]?.boolValue == false, "\(pushed)")
        #expect(f.has(fromB, in: "refs/heads/synced/main", of: f.a))
        #expect(!f.has(fromB, of: f.a), "not merged before A syncs")
        let onA = try #require(try f.sync(f.a, on: daemonA)["result"])
        #expect(onA["merged"]?.boolValue == true, "\(onA)")
        #expect(f.has(fromB, of: f.a), "A's branch has B's commit after A's sync")
        #expect(try AnnexLookups.whereis(try AnnexLookups.key("three", in: f.a), in: f.a, annex: f.annex) == [uuidB])

        // Nothing new: nothing pulled, pushed or merged.
        let quiet = try #require(try f.sync(f.b, on: f.daemonB)["result"])
        let again = try #require(try f.sync(f.b, on: f.daemonB)["result"])
        #expect(again["merged"]?.boolValue == false && again["peers"]?[0]?["pulled"]?.boolValue == false
                && again["peers"]?[0]?["pushed"]?.boolValue == false, "\(quiet) then \(again)")

        // Events: started and finished, with the peers.
        let events = try f.daemonB.cli("events --since 0 --json").split(separator: "\n")
            .compactMap { try? JSONValue(parsing: Array($0.utf8)) }
        let started = events.filter { $0["type"]?.stringValue == "sync.started" }
        let finished = events.filter { $0["type"]?.stringValue == "sync.finished" }
        #expect(started.count == 4 && finished.count == 4, "\(events)")
        #expect(started.first?["peers"] == ["a"] && started.first?["repo"]?.stringValue == f.b)
        #expect(finished.first?["merged"]?.boolValue == true && finished.first?["gets"]?.intValue == 0)

        // annex-cli sync: text, then --json.
        let later = try f.commit("four", in: f.a)
        let text = try f.daemonB.cli("sync --repo \(f.b)")
        #expect(text.contains("a (\(uuidA)): pulled changes") && text.contains("merged"), "\(text)")
        #expect(f.has(later, of: f.b))
        let json = try f.daemonB.json("sync --repo \(f.b) a")
        #expect(json["peers"]?[0]?["name"]?.stringValue == "a" && json["merged"] != nil, "\(json)")
    }

    /// Both sides committed: the merge is git-annex's, a merge commit, and a conflict on an
    /// annexed file is resolved its way (both versions kept as FILE.variant-XXXX).
    @Test(arguments: TestEnvironment.gitAnnexVersions)
    func divergentBranchesAreMergedAsGitAnnexDoes(annex: TestEnvironment.GitAnnex) throws {
        let f = try SyncFixture(annex: annex)
        let daemonA = try #require(f.daemonA)
        let onA = try sh("echo a > same && git annex add -q same && git commit -qm a-same && git rev-parse HEAD", in: f.a, annex: annex)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let onB = try sh("echo b > same && git annex add -q same && git commit -qm b-same && git rev-parse HEAD", in: f.b, annex: annex)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let response = try f.sync(f.b, on: f.daemonB)
        let r = try #require(response["result"], "\(annex): \(response)")
        #expect(r["merged"]?.boolValue == true && r["peers"]?[0]?["pushed"]?.boolValue == true, "\(annex): \(r)")
        #expect(f.has(onA, of: f.b) && f.has(onB, of: f.b), "\(annex)")
        let parents = try sh("git log -1 --format=%P", in: f.b).split(separator: " ")
        #expect(parents.count == 2, "\(annex): a merge commit")
        let files = try sh("git ls-files", in: f.b).split(separator: "\n").map(String.init)
        #expect(files.filter { $0.hasPrefix("same.variant-") }.count == 2 && !files.contains("same"), "\(annex): \(files)")
        // A's sync takes the merge as it is (B pushed it to synced/main).
        _ = try #require(try f.sync(f.a, on: daemonA)["result"])
        let headA = try sh("git rev-parse HEAD", in: f.a), headB = try sh("git rev-parse HEAD", in: f.b)
        #expect(headA == headB, "\(annex): A fast-forwarded to B's merge")
    }

    /// A peer that is down fails on its own (peer_unreachable); the sync itself succeeds. (The
    /// code comes from `annexd git-connect`'s stderr: git went through annexd, not
    /// git-remote-tor-annex.)
    @Test func aPeerThatIsDownGetsItsOwnError() throws {
        let f = try SyncFixture()
        f.daemonA?.kill9()
        try sh("git config remote.a.annex-sync false", in: f.b)
        #expect(try f.sync(f.b, on: f.daemonB)["error"]?["data"]?["reason"]?.stringValue == "no_peers")
        let r = try f.sync(f.b, on: f.daemonB, ["peers": ["a"]])
        let peer = try #require(r["result"]?["peers"]?[0], "\(r)")
        #expect(peer["error"]?["code"]?.stringValue == "peer_unreachable", "\(r)")
        #expect((peer["error"]?["message"]?.stringValue ?? "").contains(".onion"), "\(r)")
        #expect(peer["pulled"]?.boolValue == false && peer["pushed"]?.boolValue == false)
        let out = try f.daemonB.cli("sync --repo \(f.b) a", allowFailure: true)
        #expect(out.contains("a (") && out.contains("failed") && out.contains("[peer_unreachable]"), "\(out)")
    }

    @Test func badInputIsRefused() throws {
        let f = try SyncFixture()
        for (params, reason) in [
            (["repo": "/nonexistent"], "repo_not_found"),
            (["repo": .string(f.b), "peers": ["nobody"]], "remote_not_found"),
            (["repo": .string(f.b), "content": "yes"], nil),
            (["repo": .string(f.b), "direction": "sideways"], nil),
            (["repo": .string(f.b), "peers": "a"], nil),
        ] as [(JSONObject, String?)] {
            let r = try f.daemonB.process.response("sync.run", .object(params))
            #expect(r["error"] != nil, "\(params) was accepted: \(r)")
            if let reason { #expect(r["error"]?["data"]?["reason"]?.stringValue == reason, "\(r)") }
            #expect((r["error"]?["message"]?.stringValue ?? "").count > 10, "\(r)")
        }
        // git-connect by hand, as git would run it: what is wrong, on stderr, with a code.
        for (args, env, says) in [
            (["git-upload-pack", "nonsense"], [String: String](), "[invalid_address]"),
            (["git-frob", "x.onion:1"], [:], "[invalid_service]"),
            (["git-upload-pack", OnionNetwork.fakeOnionValid() + ":1234"], [:], "ANNEXD_SOCKS is not set"),
            (["git-upload-pack", OnionNetwork.fakeOnionValid() + ":1234"], ["ANNEXD_SOCKS": "127.0.0.1:9", "ANNEXD_GIT_REPO": f.b], "no token is stored"),
        ] {
            let r = try Command.run([TestEnvironment.annexd, "git-connect"] + args, cwd: "/",
                                    environment: ProcessInfo.processInfo.environment.merging(env) { $1 })
            #expect(r.status == 128 && r.stderr.hasPrefix("annexd git-connect: ") && r.stderr.contains(says), "\(args): \(r.stderr)")
        }
        let cli = try f.daemonB.cli("sync --repo \(f.b) --direction sideways", allowFailure: true)
        #expect(cli.contains("'sideways' is invalid") && cli.contains("'pull', 'push' or 'both'"), "\(cli)")
    }

    /// Stock remotedaemon serving `a`: annexd pulls its commit, and pushes so that the stock
    /// side's `git annex merge` sees annexd's commit.
    @Test(.enabled(if: getuid() == 0, "serving with stock remotedaemon needs root (a mount namespace to bind-mount /etc/tor/torrc)"),
          arguments: TestEnvironment.gitAnnexVersions)
    func withAStockPeer(annex: TestEnvironment.GitAnnex) throws {
        let f = try SyncFixture(annex: annex, stockA: true)
        let uuidA = try f.uuid(f.a), uuidB = try f.uuid(f.b)
        let fromA = try f.commit("two", in: f.a)
        let r = try #require(try f.sync(f.b, on: f.daemonB)["result"])
        #expect(r["peers"]?[0]?["error"] == nil && r["peers"]?[0]?["pulled"]?.boolValue == true, "\(annex): \(r)")
        #expect(f.has(fromA, of: f.b), "\(annex)")
        #expect(try AnnexLookups.whereis(try AnnexLookups.key("two", in: f.b), in: f.b, annex: annex) == [uuidA])

        let fromB = try f.commit("three", in: f.b)
        let p = try #require(try f.sync(f.b, on: f.daemonB)["result"])
        #expect(p["peers"]?[0]?["pushed"]?.boolValue == true && p["peers"]?[0]?["error"] == nil, "\(annex): \(p)")
        #expect(f.has(fromB, in: "refs/heads/synced/main", of: f.a), "\(annex)")
        try sh("git annex merge -q", in: f.a, annex: annex)
        #expect(f.has(fromB, of: f.a), "\(annex): the stock side merged annexd's commit")
        #expect(try AnnexLookups.whereis(try AnnexLookups.key("three", in: f.a), in: f.a, annex: annex) == [uuidB], "\(annex)")

        // It was annexd's client that connected (git-remote-tor-annex never sends VERSION).
        let heard = try String(contentsOfFile: try #require(f.stock).logPath, encoding: .utf8)
        #expect(heard.contains("VERSION") && heard.contains("CONNECT git-upload-pack") && heard.contains("CONNECT git-receive-pack"),
                "\(annex): \(heard)")
    }
}
