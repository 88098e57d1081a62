#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// `sync.plan` against a real annexd peer: the client wants `include=*.jpg`, the server (peer)
/// has no preferred content set; git-annex's own matching decides, annexd lists it with reasons.
@Suite(.serialized, .timeLimit(minutes: 5)) struct SyncPlanTests {
    /// Server has a.jpg, b.jpg, c.txt; the client adds mine.jpg and mine.txt of its own.
    static func fixture() throws -> TransferFixture {
        let f = try TransferFixture(files: ["a.jpg": 100, "b.jpg": 200, "c.txt": 300])
        try sh("""
            printf 'mine\\n' > mine.jpg && printf 'text\\n' > mine.txt && git annex add -q mine.jpg mine.txt && git commit -qm mine
            git annex wanted here 'include=*.jpg' >/dev/null
            """, in: f.client, annex: f.annex)
        return f
    }

    static func plan(_ f: TransferFixture, _ extra: JSONObject = [:]) throws -> JSONValue {
        var params: JSONObject = ["repo": .string(f.client)]
        for (k, v) in extra { params[k] = v }
        return try f.daemon.process.call("sync.plan", .object(params))
    }

    /// (action, file, peer name or "here") of each action.
    static func summary(_ actions: JSONValue?) -> [String] {
        (actions?.arrayValue ?? []).map {
            "\($0["action"]!.stringValue!) \($0["file"]?.stringValue ?? "?") \($0["peer"]?["name"]?.stringValue ?? "here")"
        }
    }

    @Test func listsWhatGitAnnexWouldMoveAndWhy() throws {
        let f = try Self.fixture()
        let plan = try Self.plan(f)
        #expect(Self.summary(plan["actions"]) == [
            "get a.jpg peer", "get b.jpg peer",
            "put mine.jpg peer", "put mine.txt peer",
            "drop mine.txt here",
        ], "\(plan)")
        #expect(plan["unavailable"]?.arrayValue?.isEmpty == true)
        let actions = plan["actions"]!.arrayValue!
        let get = actions[0], put = actions[2], drop = actions[4]
        #expect(get["reason"]?.stringValue == #"here wants it (preferred content "include=*.jpg")"#)
        #expect(get["key"]?.stringValue == (try f.key("a.jpg")))
        #expect(get["peer"]?["uuid"]?.stringValue == f.serverUUID)
        #expect(put["reason"]?.stringValue == "peer has no preferred content set, so it wants every file")
        #expect(drop["peer"] == nil)
        #expect((drop["reason"]?.stringValue ?? "").hasPrefix(#"here does not want it (preferred content "include=*.jpg"); dropped only if numcopies"#))
        // A dry run: nothing moved, nothing queued.
        #expect(try f.daemon.process.call("transfer.list")["total"]?.intValue == 0)
        #expect(FileManager.default.fileExists(atPath: f.client + "/mine.txt") && !FileManager.default.isReadableFile(atPath: f.client + "/a.jpg"))
    }

    /// The peer's own preferred content decides puts; a peer left out of sync is not used.
    @Test func peerPreferencesAndLeftOutPeers() throws {
        let f = try Self.fixture()
        try sh("git annex wanted peer 'exclude=*.txt' >/dev/null", in: f.client, annex: f.annex)
        var plan = try Self.plan(f)
        #expect(Self.summary(plan["actions"]).filter { $0.hasPrefix("put") } == ["put mine.jpg peer"], "\(plan)")
        #expect(plan["actions"]!.arrayValue!.first { $0["action"] == "put" }?["reason"]?.stringValue
                == #"peer wants it (preferred content "exclude=*.txt")"#)
        // The peer holds c.txt and does not want it: dropped from there (if numcopies allow).
        #expect(Self.summary(plan["actions"]).filter { $0.hasPrefix("drop") } == ["drop mine.txt here", "drop c.txt peer"], "\(plan)")

        try sh("git config remote.peer.annex-sync false", in: f.client)
        plan = try Self.plan(f)
        #expect(Self.summary(plan["actions"]) == ["drop mine.txt here"], "\(plan)")
        #expect(Self.summary(plan["unavailable"]) == ["get a.jpg here", "get b.jpg here"], "\(plan)")
        #expect((plan["unavailable"]?[0]?["reason"]?.stringValue ?? "").hasSuffix("none of the peers synced with has a copy"))
    }

    /// sync.run with content does exactly what sync.plan listed: the gets and puts are queued and
    /// done, and mine.txt is dropped here once its put made that safe (numcopies 1).
    @Test func syncRunWithContentDoesWhatThePlanSaid() throws {
        let f = try Self.fixture()
        let plan = try Self.plan(f)
        let planned = Self.summary(plan["actions"])
        let r = try f.daemon.process.call("sync.run", ["repo": .string(f.client), "content": true])
        let content = try #require(r["content"], "\(r)")
        #expect(content["gets"]?.intValue == 2 && content["puts"]?.intValue == 2, "\(r)")
        #expect(content["drops"]?.intValue == 1 && content["refused"]?.arrayValue?.isEmpty == true, "\(r)")
        var done: [String] = []
        for id in content["transfers"]?.arrayValue ?? [] {
            let t = try f.wait(id.stringValue!)
            #expect(t["state"]?.stringValue == "done", "\(t)")
            done.append("\(t["direction"]!.stringValue!) \(t["file"]?.stringValue ?? "?") \(t["peer"]?["name"]?.stringValue ?? "?")")
        }
        #expect(done.sorted() == planned.filter { !$0.hasPrefix("drop") }.sorted(), "\(done) vs \(planned)")
        for file in ["a.jpg", "b.jpg", "mine.jpg"] {
            #expect(try f.whereis(f.key(file, in: f.client), in: f.client).contains(f.clientUUID), "\(file) here")
        }
        for file in ["mine.jpg", "mine.txt"] {
            #expect(try f.whereis(f.key(file, in: f.client), in: f.server).contains(f.serverUUID), "\(file) on the peer")
        }
        #expect(try !f.whereis(f.key("mine.txt", in: f.client), in: f.client).contains(f.clientUUID), "mine.txt dropped here")
        #expect(try !f.whereis(f.key("c.txt", in: f.client), in: f.client).contains(f.clientUUID), "c.txt not wanted here: not fetched")
        // Nothing left to do.
        let after = try Self.plan(f)
        #expect(Self.summary(after["actions"]).isEmpty, "\(after)")
        // annex-cli shows the plan, and sync --content says what it did.
        #expect(try f.daemon.cli("sync --plan --repo \(f.client)").contains("nothing to get, put or drop"))
    }

    @Test func refusalsAreClear() throws {
        let f = try Self.fixture()
        for (params, reason) in [
            (["repo": .string(f.client), "peers": ["nobody"]], "remote_not_found"),
            (["repo": "/nonexistent"], "repo_not_found"),
            (["repo": .string(f.client), "peers": "peer"], nil),
            (["repo": .string(f.client), "extra": 1], nil),
        ] as [(JSONObject, String?)] {
            let r = try f.daemon.process.response("sync.plan", .object(params))
            #expect(r["error"] != nil, "\(params) was accepted: \(r)")
            if let reason { #expect(r["error"]?["data"]?["reason"]?.stringValue == reason, "\(r)") }
            #expect((r["error"]?["message"]?.stringValue ?? "").count > 10, "\(r)")
        }
    }
}
