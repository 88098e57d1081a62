#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// The transfer settings at work on real peers: git-annex's own git config as defaults, stall
/// detection on a peer that stops answering mid-DATA, and progress while bytes move.
@Suite(.serialized, .timeLimit(minutes: 10)) struct TransferSettingsIntegrationTests {
    private func bytesOf(_ t: JSONValue) -> Int64 { t["bytes"]?.intValue ?? 0 }

    /// The serving peer stops (SIGSTOP: the connection stays open, no byte comes): the attempt
    /// is stalled after remote.<name>.annex-stalldetection's time, retried after
    /// annex.retry-delay, and finishes from the partial once the peer runs again.
    @Test func aPeerThatStopsMidDataIsStalledAndTheTransferResumes() throws {
        let f = try TransferFixture(files: ["big": 16 << 20])
        let serving = try #require(f.serving)
        try sh("git config remote.peer.annex-stalldetection 0KiB/2s && git config annex.retry-delay 1", in: f.client)
        _ = try f.daemon.process.call("settings.set", ["download_limit": .int(2 << 20)])
        let id = try f.start("get", paths: ["big"])[0]["id"]!.stringValue!
        _ = try f.wait(id, until: { self.bytesOf($0) > 2 << 20 })
        kill(serving.process.pid, SIGSTOP)
        // Bytes already in the socket buffers (and the SOCKS stand-in's) still arrive for a while:
        // the stall counts from the last byte.
        var lastBytes: Int64 = -1, lastChange = Date()
        let stalled = try f.wait(id, timeout: 30, until: { t in
            if self.bytesOf(t) != lastBytes { (lastBytes, lastChange) = (self.bytesOf(t), Date()) }
            return t["error"]?["code"]?.stringValue != nil
        })
        let detectedAfter = Date().timeIntervalSince(lastChange)
        kill(serving.process.pid, SIGCONT)
        #expect(stalled["error"]?["code"]?.stringValue == "stalled", "\(stalled)")
        #expect((stalled["error"]?["message"]?.stringValue ?? "").contains("no data moved in 2 s"), "\(stalled)")
        // The byte count is updated once a second, the stall checked once a second.
        #expect(detectedAfter >= 0.5 && detectedAfter < 4.5, "stalled \(detectedAfter) s after the last byte with a 2 s stall time")
        #expect(stalled["state"]?.stringValue == "queued" && stalled["next_retry"]?.doubleValue != nil, "\(stalled)")

        _ = try f.daemon.process.call("settings.set", ["download_limit": 0])
        let end = try f.wait(id, timeout: 60)
        #expect(end["state"]?.stringValue == "done", "\(end)")
        #expect((end["resumed_from"]?.intValue ?? 0) >= 2 << 20, "resumed from the partial: \(end)")
        #expect(sameBytes(f.client + "/big", f.server + "/big"))
    }

    /// annex.bwlimit in the repository limits each transfer; settings.set's per-peer limit
    /// replaces it; null puts it back; settings.get says which members were set.
    @Test func gitConfigGivesTheDefaults() throws {
        let f = try TransferFixture(files: ["big": 32 << 20])
        try sh("git config annex.bwlimit 1MiB && git config annex.jobs 3 && git config annex.retry 2", in: f.client)
        let id = try f.start("get", paths: ["big"])[0]["id"]!.stringValue!
        _ = try f.wait(id, until: { self.bytesOf($0) > 0 })
        let limited = try f.rate(id, over: 4)
        #expect(limited > 0.8 * Double(1 << 20) && limited < 1.2 * Double(1 << 20), "\(limited) B/s under annex.bwlimit 1MiB")

        let peer = f.serverUUID
        let set = try f.daemon.process.call("settings.set", ["peers": [["uuid": .string(peer), "download_limit": .int(4 << 20)]]])
        #expect(set["set"]?.arrayValue?.compactMap(\.stringValue) == ["peers"], "\(set)")
        // A limiter is chosen when an attempt starts: pause and resume for the new one.
        _ = try f.daemon.process.call("transfer.pause", ["ids": [.string(id)]])
        _ = try f.daemon.process.call("transfer.resume", ["ids": [.string(id)]])
        _ = try f.wait(id, until: { $0["state"]?.stringValue == "active" && self.bytesOf($0) > 0 })
        usleep(500_000)
        let peerLimited = try f.rate(id, over: 3)
        #expect(peerLimited > 0.8 * Double(4 << 20) && peerLimited < 1.2 * Double(4 << 20), "\(peerLimited) B/s under the peer's 4 MiB/s")

        _ = try f.daemon.process.call("settings.set", ["peers": .null, "download_limit": 0])
        let end = try f.wait(id, timeout: 60)
        #expect(end["state"]?.stringValue == "done", "\(end)")
        #expect(sameBytes(f.client + "/big", f.server + "/big"))
        let settings = try f.daemon.process.call("settings.get")
        #expect(settings["set"]?.arrayValue?.compactMap(\.stringValue) == ["download_limit"], "\(settings)")
        #expect(settings["peers"]?.arrayValue?.isEmpty == true, "\(settings)")
    }

    /// transfer.progress comes at least once a second while bytes move (and never twice in one).
    @Test func progressComesEverySecondWhileBytesMove() throws {
        let f = try TransferFixture(files: ["big": 12 << 20])
        _ = try f.daemon.process.call("settings.set", ["download_limit": .int(2 << 20)])
        let id = try f.start("get", paths: ["big"])[0]["id"]!.stringValue!
        let end = try f.wait(id, timeout: 60)
        #expect(end["state"]?.stringValue == "done", "\(end)")
        let events = try f.daemon.cli("events --since 0 --json").split(separator: "\n")
            .compactMap { try? JSONValue(parsing: Array($0.utf8)) }
        func time(_ type: String) -> [Double] {
            events.filter { $0["type"]?.stringValue == type }.compactMap { $0["time"]?.doubleValue }
        }
        let started = try #require(time("transfer.started").first), finished = try #require(time("transfer.finished").first)
        let progress = time("transfer.progress")
        #expect(finished - started > 4, "a 12 MiB get at 2 MiB/s takes ~6 s, took \(finished - started)")
        // Every second of the transfer has its event: no gap over 1.5 s (ticks are a second apart).
        let marks = [started] + progress + [finished]
        for (a, b) in zip(marks, marks.dropFirst()) { #expect(b - a <= 1.5, "\(b - a) s without a progress event while bytes moved") }
        for (a, b) in zip(progress, progress.dropFirst()) { #expect(b - a >= 0.9, "progress events \(b - a) s apart") }
    }

    /// Small files run many at once with one peer (beyond jobs_per_peer), and every one of them
    /// ends done (a race once left one showing "verifying" for ever).
    @Test func manySmallFilesRunManyAtOnceAndAllFinish() throws {
        var files: [String: Int] = [:]
        for i in 0..<200 { files["f\(i)"] = 1024 }
        let f = try TransferFixture(files: files)
        _ = try f.daemon.process.call("settings.set", ["jobs_per_peer": 2])
        let ids = try f.start("get", paths: ["."]).compactMap { $0["id"]?.stringValue }
        #expect(ids.count == 200)
        for id in ids {
            let t = try f.wait(id, timeout: 60)
            #expect(t["state"]?.stringValue == "done", "\(t)")
        }
        let events = try f.daemon.cli("events --since 0 --json").split(separator: "\n")
            .compactMap { try? JSONValue(parsing: Array($0.utf8)) }
        // At most how many were active at once (started, not yet finished).
        var active = 0, most = 0
        for e in events {
            switch e["type"]?.stringValue {
            case "transfer.started": active += 1; most = max(most, active)
            case "transfer.finished", "transfer.failed": active -= 1
            default: break
            }
        }
        #expect(most > 2 && most <= 16, "\(most) small transfers at once with jobs_per_peer 2 and small_jobs 16")
        let present = try sh("git annex find --in=here | wc -l", in: f.client, annex: f.annex).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(present == "200")
    }
}
