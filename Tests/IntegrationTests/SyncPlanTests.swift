#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// `sync.plan` against a real annexd peer: the client wants `include=*.jpg`, the server (peer)
/// has no preferred content set; git-annex's own matching decides, annexd lists it with reasons.
@Suite(.serialized, .timeLimit(.minutes(5))) struct SyncPlanTests {
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
