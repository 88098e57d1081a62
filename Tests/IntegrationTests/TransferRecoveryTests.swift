#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// Transfers survive what happens to daemons and peers: annexd killed mid-get comes back and
/// resumes from the partial by itself; a peer that dies is retried until it returns. And the
/// daemon gets from and puts to stock git-annex's remotedaemon of each version.
@Suite(.serialized, .timeLimit(minutes: 10)) struct TransferRecoveryTests {
    private func bytesOf(_ t: JSONValue) -> Int64 { t["bytes"]?.intValue ?? 0 }

    @Test func killedMidGetResumesFromThePartialByItself() throws {
        let size: Int64 = 64 << 20
        let f = try TransferFixture(files: ["big": Int(size)])
        let key = try f.key("big")
        _ = try f.daemon.process.call("settings.set", ["download_limit": .int(16 << 20)])
        let id = try f.start("get", paths: ["big"])[0]["id"]!.stringValue!
        let midway = try f.wait(id, until: { self.bytesOf($0) > 16 << 20 })
        #expect(midway["state"]?.stringValue == "active", "\(midway)")
        f.daemon.kill9()
        let partial = Int64(Posix.fileSize(f.client + "/.git/annex/tmp/" + key) ?? 0)
        #expect(partial > 8 << 20 && partial < size, "partial of \(partial) bytes")

        try f.daemon.start()
        _ = try f.daemon.process.call("settings.set", ["download_limit": 0])
        let end = try f.wait(id, timeout: 120)
        #expect(end["state"]?.stringValue == "done", "\(end)")
        let requested = size - (end["resumed_from"]?.intValue ?? 0)
        #expect(Double(requested) < 1.1 * Double(size - partial), "asked for \(requested) bytes with \(size - partial) missing")
        #expect(sameBytes(f.client + "/big", f.server + "/big"))
        #expect(try f.whereis(key, in: f.client).contains(f.clientUUID))
        // No stale transfer lock is left behind: dropped again, a stock get of the same key succeeds.
        try sh("git annex drop --force big", in: f.client, annex: f.annex)
        let stock = try sh("git annex get --from origin big 2>&1; echo status=$?", in: f.client, annex: f.annex, allowFailure: true)
        #expect(!stock.contains("transfer already in progress") && stock.contains("status=0"), "\(stock)")
        #expect(sameBytes(f.client + "/big", f.server + "/big"))
    }

    @Test func aPeerThatDiesIsRetriedUntilItReturns() throws {
        let f = try TransferFixture(files: ["big": 32 << 20])
        let serving = try #require(f.serving)
        _ = try f.daemon.process.call("settings.set", ["download_limit": .int(4 << 20), "retry_delay": 0.5])
        let id = try f.start("get", paths: ["big"])[0]["id"]!.stringValue!
        _ = try f.wait(id, until: { self.bytesOf($0) > 4 << 20 })
        serving.kill9()
        let failed = try f.wait(id, timeout: 30, until: { $0["error"]?["code"]?.stringValue != nil })
        #expect(failed["error"]?["code"]?.stringValue == "peer_unreachable", "\(failed)")
        #expect(failed["next_retry"]?.doubleValue != nil, "a failure worth retrying has its next attempt scheduled: \(failed)")
        #expect(failed["state"]?.stringValue == "queued")
        let events = try f.daemon.cli("events --since 0 --json")
        #expect(events.contains("\"type\":\"transfer.failed\""))

        try serving.start()
        _ = try f.daemon.process.call("settings.set", ["download_limit": 0])
        let end = try f.wait(id, timeout: 90)
        #expect(end["state"]?.stringValue == "done", "\(end)")
        #expect((end["attempt"]?.intValue ?? 0) >= 2)
        #expect((end["resumed_from"]?.intValue ?? 0) > 0, "the retry resumed from the partial: \(end)")
        #expect(sameBytes(f.client + "/big", f.server + "/big"))
    }

    /// A stock `git annex get` of a key annexd is downloading says the transfer is in progress.
    @Test func stockGetWaitsForAnnexdsDownload() throws {
        let f = try TransferFixture(files: ["big": 32 << 20])
        _ = try f.daemon.process.call("settings.set", ["download_limit": .int(4 << 20)])
        let id = try f.start("get", paths: ["big"])[0]["id"]!.stringValue!
        _ = try f.wait(id, until: { self.bytesOf($0) > 1 << 20 })
        // The clone's origin is the server's path: git-annex would copy at once if it could.
        let stock = try sh("git annex get --from origin big 2>&1; echo status=$?", in: f.client, annex: f.annex, allowFailure: true)
        #expect(stock.contains("transfer already in progress"), "\(stock)")
        _ = try f.daemon.process.call("settings.set", ["download_limit": 0])
        #expect(try f.wait(id)["state"]?.stringValue == "done")
    }

    @Test(.enabled(if: getuid() == 0, "serving with stock remotedaemon needs root (a mount namespace to bind-mount /etc/tor/torrc)"),
          arguments: TestEnvironment.gitAnnexVersions)
    func getAndPutWithStockRemotedaemon(annex: TestEnvironment.GitAnnex) throws {
        let f = try TransferFixture(files: ["a": 2_000_000, "b": 3], annex: annex, serveWithAnnexd: false)
        let keyA = try f.key("a")
        for t in try f.start("get", paths: ["a", "b"]) {
            let end = try f.wait(t["id"]!.stringValue!)
            #expect(end["state"]?.stringValue == "done", "\(annex): \(end)")
        }
        #expect(sameBytes(f.client + "/a", f.server + "/a"))
        #expect(try f.whereis(keyA, in: f.client).isSuperset(of: [f.clientUUID, f.serverUUID]))

        try sh("head -c 300000 /dev/urandom > c && git annex add -q c && git commit -qm c", in: f.client, annex: f.annex)
        let keyC = try f.key("c", in: f.client)
        let put = try f.start("put", paths: ["c"], peer: "peer")
        let end = try f.wait(put[0]["id"]!.stringValue!)
        #expect(end["state"]?.stringValue == "done", "\(annex): \(end)")
        #expect(sameBytes(f.client + "/c", try f.serverObject(keyC)))
        // Both sides' location logs agree: the server recorded it, and annexd did on the client.
        #expect(try f.whereis(keyC, in: f.client).isSuperset(of: [f.clientUUID, f.serverUUID]))
        #expect(try f.whereis(keyC, in: f.server).contains(f.serverUUID))
    }
}
