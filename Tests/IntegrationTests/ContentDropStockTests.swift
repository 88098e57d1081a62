#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// `content.drop` against stock `git annex remotedaemon` (Debian's and PyPI's git-annex)
/// through the SOCKS stand-in: the client (annexd) gets files from the stock server, then
/// drops here (the server's copy locked with LOCKCONTENT) and from the server (REMOVE, or
/// REMOVE-BEFORE with a v3+ peer), or is refused.
@Suite(.serialized, .timeLimit(minutes: 10)) struct ContentDropStockTests {
    @Test(.enabled(if: getuid() == 0, "serving with stock remotedaemon needs root (a mount namespace to bind-mount /etc/tor/torrc)"),
          arguments: TestEnvironment.gitAnnexVersions)
    func dropHereAndFromAStockPeer(annex: TestEnvironment.GitAnnex) throws {
        let f = try TransferFixture(files: ["f": 100_000, "g": 200_000, "h": 50], annex: annex, serveWithAnnexd: false, stockDebug: true)
        for t in try f.start("get", paths: ["f", "g", "h"]) {
            #expect(try f.wait(t["id"]!.stringValue!)["state"]?.stringValue == "done", "\(annex)")
        }
        let server = f.serverUUID, client = f.clientUUID
        let (keyF, keyG, keyH) = (try f.key("f"), try f.key("g"), try f.key("h"))
        func drop(_ path: String, from: String? = nil) throws -> JSONValue? {
            try AnnexLookups.drop(on: f.daemon.process, repo: f.client, paths: [path], from: from).first
        }
        func object(_ key: String, in repo: String) throws -> String? { try AnnexLookups.object(key, in: repo, annex: annex) }
        /// The server's view once it has merged the client's git-annex branch.
        func serverWhereis(_ key: String) throws -> Set<String> {
            try sh("git fetch -q ../client +git-annex:refs/remotes/client/git-annex && git annex merge -q", in: f.server, annex: annex)
            return try f.whereis(key, in: f.server)
        }

        // (c) numcopies 2 with one other copy: refused, naming the copy it locked; nothing removed.
        try sh("git annex numcopies 2", in: f.client, annex: annex)
        var r = try drop("h")
        #expect(r?["dropped"]?.boolValue == false && AnnexLookups.dropCode(r) == "unsafe_drop", "\(annex): \(String(describing: r))")
        #expect(AnnexLookups.dropMessage(r).contains("could only verify 1 of the 2") && AnnexLookups.dropMessage(r).contains("locked: peer"),
                "\(annex): \(String(describing: r))")
        #expect(try object(keyH, in: f.client) != nil && object(keyH, in: f.server) != nil)
        r = try drop("h", from: "peer")
        #expect(AnnexLookups.dropCode(r) == "unsafe_drop" && AnnexLookups.dropMessage(r).contains("locked: here"), "\(annex): \(String(describing: r))")
        #expect(try object(keyH, in: f.server) != nil)

        // (a) numcopies 1: dropped here once the server's copy is locked (LOCKCONTENT; mincopies 1
        // counts only locked or trusted copies); the server keeps it, and it verifies.
        try sh("git annex numcopies 1", in: f.client, annex: annex)
        r = try drop("f")
        #expect(r?["dropped"]?.boolValue == true && r?["error"] == nil && r?["from"]?.stringValue == client, "\(annex): \(String(describing: r))")
        #expect(try object(keyF, in: f.client) == nil)
        #expect(sameBytes(try #require(try object(keyF, in: f.server)), f.server + "/f"))
        try sh("git annex fsck -q --key \(keyF)", in: f.server, annex: annex)
        #expect(try f.whereis(keyF, in: f.client) == [server])
        #expect(try serverWhereis(keyF) == [server])

        // (b) from the peer, a copy being here: the stock server removes its object and logs it.
        let objectG = try #require(try object(keyG, in: f.server))
        r = try drop("g", from: "peer")
        #expect(r?["dropped"]?.boolValue == true && r?["error"] == nil && r?["from"]?.stringValue == server, "\(annex): \(String(describing: r))")
        #expect(try !Posix.exists(objectG) && object(keyG, in: f.server) == nil)
        #expect(try !f.whereis(keyG, in: f.server).contains(server), "the stock server logged its removal")
        #expect(try object(keyG, in: f.client) != nil)
        #expect(try f.whereis(keyG, in: f.client) == [client])
        #expect(try serverWhereis(keyG) == [client])

        // What the stock server heard: LOCKCONTENT for the drops here; for the removal, plain
        // REMOVE from a v1 peer (10.20230126), GETTIMESTAMP and REMOVE-BEFORE from a v3+ one.
        let heard = try String(contentsOfFile: f.stock!.logPath, encoding: .utf8)
        let version = heard.split(separator: "\n").first { $0.contains("P2P < VERSION") || $0.contains("P2P > VERSION") }
        #expect(heard.contains("LOCKCONTENT \(keyF)") && heard.contains("UNLOCKCONTENT"), "\(annex): \(heard)")
        if annex.name == "debian" {
            #expect(heard.contains("REMOVE \(keyG)") && !heard.contains("REMOVE-BEFORE"), "\(annex): \(String(describing: version))\n\(heard)")
        } else {
            #expect(heard.contains("GETTIMESTAMP") && heard.contains("REMOVE-BEFORE") && heard.contains(keyG), "\(annex): \(String(describing: version))\n\(heard)")
        }
    }
}
