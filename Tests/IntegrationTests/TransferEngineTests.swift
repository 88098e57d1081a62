#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// The daemon's own transfers (transfer.start …) against real peers through the SOCKS stand-in:
/// another annexd, and stock `git annex remotedaemon`.
@Suite(.serialized, .timeLimit(minutes: 10)) struct TransferEngineTests {
    @Test func getAndPutWithAnotherAnnexd() throws {
        let f = try TransferFixture(files: ["big": 3_000_000, "small": 10])
        let bigKey = try f.key("big"), smallKey = try f.key("small")

        let started = try f.start("get", paths: ["big", "small"])
        #expect(started.count == 2)
        // Asking again names the same transfers.
        let again = try f.start("get", paths: ["big"])
        #expect(again.first?["id"] == started.first(where: { $0["key"]?.stringValue == bigKey })?["id"])
        for t in started {
            let end = try f.wait(t["id"]!.stringValue!)
            #expect(end["state"]?.stringValue == "done", "\(end)")
            #expect(end["peer"]?["name"]?.stringValue == "peer")
        }
        #expect(sameBytes(f.client + "/big", f.server + "/big"))
        #expect(try f.whereis(bigKey, in: f.client).isSuperset(of: [f.clientUUID, f.serverUUID]))
        #expect(try f.whereis(smallKey, in: f.client).contains(f.clientUUID))

        // A put: a new file of the client reaches the server, and both location logs say so.
        try sh("head -c 500000 /dev/urandom > new && git annex add -q new && git commit -qm new", in: f.client, annex: f.annex)
        let newKey = try f.key("new", in: f.client)
        let put = try f.start("put", paths: ["new"], peer: "peer")
        let end = try f.wait(put[0]["id"]!.stringValue!)
        #expect(end["state"]?.stringValue == "done", "\(end)")
        #expect(sameBytes(f.client + "/new", try f.serverObject(newKey)))
        #expect(try f.whereis(newKey, in: f.client).isSuperset(of: [f.clientUUID, f.serverUUID]))
        #expect(try f.whereis(newKey, in: f.server).contains(f.serverUUID))

        // The events tell the story, each with the whole transfer.
        let events = try f.daemon.cli("events --since 0 --json")
        for type in ["transfer.queued", "transfer.started", "transfer.finished"] {
            #expect(events.contains("\"type\":\"\(type)\""), "\(type) missing")
        }
    }

    @Test func unlockedFileIsPopulated() throws {
        let f = try TransferFixture(files: ["u": 100_000])
        try sh("git annex unlock u && git commit -qm unlock && cd ../client && git pull -q", in: f.server, annex: f.annex)
        let before = try Data(contentsOf: URL(fileURLWithPath: f.client + "/u"))
        #expect(before.count < 200, "the clone's unlocked file should be a pointer first")
        let t = try f.start("get", paths: ["u"])
        #expect(try f.wait(t[0]["id"]!.stringValue!)["state"]?.stringValue == "done")
        #expect(sameBytes(f.client + "/u", f.server + "/u"))
    }

    @Test func refusalsAreClear() throws {
        let f = try TransferFixture(files: ["a": 10])
        for (params, reason) in [
            (["repo": JSONValue.string(f.client), "direction": "get", "paths": ["nope"]], "not_annexed"),
            (["repo": .string(f.client), "direction": "get", "paths": ["../etc/passwd"]], "invalid_path"),
            (["repo": .string(f.client), "direction": "get", "keys": ["not a key"]], "invalid_key"),
            (["repo": .string(f.client), "direction": "put", "paths": ["a"]], "peer_required"),
            (["repo": .string(f.client), "direction": "put", "paths": ["a"], "peer": "nobody"], "remote_not_found"),
            (["repo": .string(f.client), "direction": "sideways", "paths": ["a"]], nil),
        ] as [(JSONObject, String?)] {
            let r = try f.daemon.process.response("transfer.start", .object(params))
            #expect(r["error"] != nil, "\(params) was accepted: \(r)")
            if let reason { #expect(r["error"]?["data"]?["reason"]?.stringValue == reason, "\(r)") }
        }
        let missing = try f.daemon.process.response("transfer.get", ["id": "t0000"])
        #expect(missing["error"]?["data"]?["reason"]?.stringValue == "transfer_not_found")
        #expect(try f.daemon.process.call("transfer.list")["total"]?.intValue == 0)
    }

    /// Pause stops an active get keeping its partial, resume finishes it from there; cancel ends
    /// it; a bandwidth limit holds and changes while running; progress comes once a second.
    @Test func pauseResumeCancelAndBandwidth() throws {
        let f = try TransferFixture(files: ["big": 64 << 20, "other": 8 << 20])
        _ = try f.daemon.process.call("settings.set", ["download_limit": .int(2 << 20)])
        let t = try f.start("get", paths: ["big"])
        let id = t[0]["id"]!.stringValue!
        let first = try f.wait(id, until: { ($0["bytes"]?.intValue ?? 0) > 0 })
        #expect(first["state"]?.stringValue == "active")
        let rate = try f.rate(id, over: 5)
        #expect(rate > 0.8 * Double(2 << 20) && rate < 1.2 * Double(2 << 20), "rate \(rate) B/s with a 2 MiB/s limit")

        // Raised while running: the same transfer speeds up.
        _ = try f.daemon.process.call("settings.set", ["download_limit": .int(8 << 20)])
        usleep(500_000)
        let faster = try f.rate(id, over: 2)
        #expect(faster > 3 * Double(2 << 20), "rate \(faster) B/s after raising the limit to 8 MiB/s")

        let paused = try f.daemon.process.call("transfer.pause", ["ids": [.string(id)]])
        #expect(paused["transfers"]?[0]?["state"]?.stringValue == "paused")
        usleep(500_000)
        let partial = try sh("stat -c %s .git/annex/tmp/\(try f.key("big"))", in: f.client).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect((Int(partial) ?? 0) > 0, "the partial is kept while paused")
        _ = try f.daemon.process.call("settings.set", ["download_limit": 0])
        _ = try f.daemon.process.call("transfer.resume", ["ids": [.string(id)]])
        let end = try f.wait(id)
        #expect(end["state"]?.stringValue == "done", "\(end)")
        #expect((end["resumed_from"]?.intValue ?? 0) >= Int64(partial) ?? 1, "\(end)")
        #expect(sameBytes(f.client + "/big", f.server + "/big"))

        // Cancel an active transfer.
        _ = try f.daemon.process.call("settings.set", ["download_limit": .int(1 << 20)])
        let o = try f.start("get", paths: ["other"])[0]["id"]!.stringValue!
        _ = try f.wait(o, until: { ($0["bytes"]?.intValue ?? 0) > 0 })
        _ = try f.daemon.process.call("transfer.cancel", ["all": true])
        let canceled = try f.wait(o)
        #expect(canceled["state"]?.stringValue == "canceled")
        #expect(canceled["error"]?["code"]?.stringValue == "canceled")

        // Progress events: for this repository, never two within a second.
        let events = try f.daemon.cli("events --since 0 --json").split(separator: "\n")
            .compactMap { try? JSONValue(parsing: Array($0.utf8)) }
            .filter { $0["type"]?.stringValue == "transfer.progress" }
        #expect(events.count >= 5, "\(events.count) progress events")
        let times = events.compactMap { $0["time"]?.doubleValue }
        for (a, b) in zip(times, times.dropFirst()) { #expect(b - a >= 0.9, "progress events \(b - a) s apart") }
    }
}

extension TransferFixture {
    static func bytesOf(_ t: JSONValue) -> Int64 { t["bytes"]?.intValue ?? 0 }

    /// Bytes per second of transfer `id` over about `seconds`, measured between two of the
    /// daemon's once-a-second updates of its byte count (so both ends are fresh).
    func rate(_ id: String, over seconds: Double) throws -> Double {
        func nextUpdate() throws -> (Int64, Date) {
            let before = Self.bytesOf(try wait(id, until: { _ in true }))
            let t = try wait(id, timeout: 5, until: { Self.bytesOf($0) != before })
            return (Self.bytesOf(t), Date())
        }
        let (b0, t0) = try nextUpdate()
        usleep(UInt32((seconds - 0.5) * 1e6))
        let (b1, t1) = try nextUpdate()
        return Double(b1 - b0) / t1.timeIntervalSince(t0)
    }

    /// The server's object file for `key`.
    func serverObject(_ key: String) throws -> String {
        server + "/" + (try sh("git annex contentlocation \(key)", in: server).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
