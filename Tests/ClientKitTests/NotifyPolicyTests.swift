import Testing
@testable import ClientKit
import Shared

/// Recorded event sequences: events as annexd sends them (envelope and fields), in; the
/// notifications the policy decides, out, compared exactly.
struct EventRecording {
    let boot: String
    private(set) var nextID = 1
    static let repo = "/home/u/photos"

    init(boot: String = "boot-1") { self.boot = boot }

    mutating func event(_ type: String, _ fields: JSONObject, repo: String? = Self.repo) -> JSONValue {
        var o: JSONObject = ["id": .int(Int64(nextID)), "boot": .string(boot), "type": .string(type), "time": .double(1000)]
        if let repo { o["repo"] = .string(repo); o["uuid"] = "u-repo" }
        for (k, v) in fields { o[k] = v }
        nextID += 1
        return .object(o)
    }

    mutating func transfer(_ type: String, _ t: TransferInfo) -> JSONValue { event(type, ["transfer": t.json]) }

    static func info(_ id: String, _ file: String, state: TransferState, bytes: Int64 = 0, attempt: Int = 1,
                     nextRetry: Double? = nil, error: TransferFailure? = nil) -> TransferInfo {
        TransferInfo(id: id, repo: repo, direction: .get, peer: TransferPeer(uuid: "u-nas", name: "nas"), key: "SHA256E-s100--" + id,
                     file: file, size: 100, state: state, bytes: bytes, attempt: attempt, nextRetry: nextRetry, error: error,
                     queuedAt: 1)
    }
}

@Suite struct NotifyPolicyTests {
    typealias R = EventRecording
    let repo = R.repo

    @Test func oneFinishedTransferReplacesItsProgressNotificationAfterTheQuietPeriod() {
        var rec = R()
        var p = NotifyPolicy(timing: .init(progressInterval: 5, quietPeriod: 2, flapWindow: 60))
        let a = R.info("t1", "cat.jpg", state: .active, bytes: 40)
        #expect(p.take(event: rec.transfer("transfer.queued", R.info("t1", "cat.jpg", state: .queued)), now: 0) == [])
        #expect(p.take(event: rec.transfer("transfer.started", a), now: 0) == [])
        let progress = NotifyIntent(slot: .transfers(repo: repo), replaces: false, summary: "Downloading cat.jpg",
                                    body: "40% of 100 B, from nas", urgency: .low, category: "transfer")
        #expect(p.take(event: rec.event("transfer.progress", ["transfers": [a].json]), now: 1) == [progress])
        // Within the interval: not updated.
        #expect(p.take(event: rec.event("transfer.progress", ["transfers": [R.info("t1", "cat.jpg", state: .active, bytes: 60)].json]), now: 2) == [])
        #expect(p.take(event: rec.transfer("transfer.finished", R.info("t1", "cat.jpg", state: .done, bytes: 100)), now: 3) == [])
        #expect(p.tick(now: 4.9) == [])
        let done = NotifyIntent(slot: .transfers(repo: repo), replaces: true, summary: "Downloaded cat.jpg",
                                body: "from nas, 100 B\nin photos", category: "transfer.complete")
        #expect(p.tick(now: 5) == [done])
        #expect(p.tick(now: 20) == [])
    }

    @Test func finishedTransfersAreBatchedUntilNoneFinishesForTheQuietPeriod() {
        var rec = R()
        var p = NotifyPolicy(timing: .init(progressInterval: 5, quietPeriod: 2, flapWindow: 60))
        for (i, now) in [0.0, 1.5, 3.0].enumerated() {
            #expect(p.take(event: rec.transfer("transfer.finished", R.info("t\(i)", "f\(i)", state: .done)), now: now) == [])
            #expect(p.tick(now: now + 1.9) == [])
        }
        #expect(p.nextDeadline == 5)
        // No progress was shown: a new notification.
        #expect(p.tick(now: 5) == [NotifyIntent(slot: .transfers(repo: repo), replaces: false, summary: "Downloaded 3 files",
                                                body: "f0, f1, f2\nin photos", category: "transfer.complete")])
        #expect(p.nextDeadline == nil)
    }

    @Test func aFailureWithNoRetryShowsTheReasonAndARetryAction() {
        var rec = R()
        var p = NotifyPolicy()
        let error = TransferFailure(code: "not_on_peer", message: "nas does not have lost")
        // A failure with a retry planned: nothing yet.
        #expect(p.take(event: rec.transfer("transfer.failed", R.info("t9", "lost", state: .failed, nextRetry: 50,
                                                                     error: error)), now: 0) == [])
        let failed = R.info("t9", "lost", state: .failed, attempt: 2, error: error)
        let shown = NotifyIntent(slot: .failure(transfer: "t9"), summary: "Could not download lost",
                                 body: "nas does not have lost (not_on_peer)", urgency: .critical, category: "transfer.error",
                                 actions: [.retry(["t9"])])
        #expect(p.take(event: rec.transfer("transfer.failed", failed), now: 1) == [shown])
        // The same failure again (a replay): not shown twice; a later attempt's failure is.
        #expect(p.take(event: rec.transfer("transfer.failed", failed), now: 2) == [])
        let third = R.info("t9", "lost", state: .failed, attempt: 3, error: error)
        #expect(p.take(event: rec.transfer("transfer.failed", third), now: 3) == [shown])
    }

    /// transfer.retry starts the run again at attempt 1: its failure is shown again.
    @Test func aRetriedTransferThatFailsAgainIsShownAgain() {
        var rec = R()
        var p = NotifyPolicy()
        let error = TransferFailure(code: "not_on_peer", message: "nas does not have lost")
        let failed = R.info("t9", "lost", state: .failed, attempt: 1, error: error)
        #expect(p.take(event: rec.transfer("transfer.failed", failed), now: 0).map(\.summary) == ["Could not download lost"])
        #expect(p.take(event: rec.transfer("transfer.resumed", R.info("t9", "lost", state: .queued, attempt: 0)), now: 1) == [])
        #expect(p.take(event: rec.transfer("transfer.started", R.info("t9", "lost", state: .active, attempt: 1)), now: 1) == [])
        #expect(p.take(event: rec.transfer("transfer.failed", failed), now: 2).map(\.summary) == ["Could not download lost"])
    }

    @Test func aFlappingPeerIsShownOncePerWindowWithItsLatestState() {
        var rec = R()
        var p = NotifyPolicy(timing: .init(progressInterval: 5, quietPeriod: 2, flapWindow: 60))
        let peer: JSONValue = ["uuid": "u-nas", "name": "nas"]
        var shown: [NotifyIntent] = []
        for i in 0..<5 {
            shown += p.take(event: rec.event("remote.connected", ["peer": peer]), now: Double(i * 10))
            shown += p.take(event: rec.event("remote.disconnected", ["peer": peer, "reason": "connection_lost",
                                                                    "message": "nas went away", "next_retry": 99]), now: Double(i * 10 + 5))
            shown += p.tick(now: Double(i * 10 + 6))
        }
        let up = NotifyIntent(slot: .peer(repo: repo, peer: "u-nas"), summary: "photos: nas is reachable", urgency: .low,
                              category: "network.connected")
        let down = NotifyIntent(slot: .peer(repo: repo, peer: "u-nas"), summary: "photos: lost nas", body: "nas went away",
                                category: "network.disconnected")
        #expect(shown == [up])
        #expect(p.tick(now: 59) == [])
        #expect(p.tick(now: 60) == [down])
        // A drop long after the window: shown again.
        #expect(p.take(event: rec.event("remote.disconnected", ["peer": peer, "reason": "connection_lost",
                                                               "message": "nas went away", "next_retry": 199]), now: 200) == [down])
    }

    @Test func pairingTorAndOnionTrouble() {
        var rec = R()
        var p = NotifyPolicy()
        #expect(p.take(event: rec.event("pair.code", ["pairing": "p1", "name": "laptop", "code": "7-guitarist-revenge"]), now: 0)
                == [NotifyIntent(slot: .pairing(id: "p1"), replaces: false, summary: "Pairing code for photos",
                                 body: "Give the other side this code: 7-guitarist-revenge\nIt will be called laptop here.",
                                 urgency: .critical, category: "network")])
        #expect(p.take(event: rec.event("pair.failed", ["pairing": "p1", "reason": "wrong_code", "error": "the codes differ"]), now: 1)
                == [NotifyIntent(slot: .pairing(id: "p1"), summary: "Pairing photos failed", body: "the codes differ",
                                 urgency: .critical, category: "network.error")])
        let warning = rec.event("tor.bootstrap", ["progress": 10, "tag": "conn_done", "summary": "Connected to a relay",
                                                  "warning": "Connection refused", "recommendation": "warn"], repo: nil)
        let trouble = NotifyIntent(slot: .tor, summary: "Tor cannot connect: Connected to a relay", body: "Connection refused",
                                   category: "network.error")
        #expect(p.take(event: warning, now: 0) == [trouble])
        #expect(p.take(event: warning, now: 1) == [])
        let ready = rec.event("tor.bootstrap", ["progress": 100, "tag": "done", "summary": "Done", "warning": .null,
                                                "recommendation": .null], repo: nil)
        #expect(p.take(event: ready, now: 2) == [])
        #expect(p.tick(now: 61) == [NotifyIntent(slot: .tor, summary: "Tor is connected", urgency: .low, category: "network.connected")])
        #expect(p.take(event: rec.event("onion.failed", ["onion": "abc.onion", "error": "551 failed"]), now: 0)
                == [NotifyIntent(slot: .onion(repo: repo), summary: "photos cannot be reached over tor",
                                 body: "Publishing abc.onion failed: 551 failed", urgency: .critical, category: "network.error")])
    }

    /// An id gap: the events of a transfer's end are missing; the re-read transfers show it,
    /// and a replay of the end afterwards does not show it again.
    @Test func aGapIsFilledFromTheReReadTransfers() {
        var rec = R()
        var cursor = EventCursor()
        var p = NotifyPolicy(timing: .init(progressInterval: 5, quietPeriod: 2, flapWindow: 60))
        cursor.subscribed(boot: rec.boot, latest: 0, since: nil)
        let events = [rec.transfer("transfer.started", R.info("t1", "a.txt", state: .active)),
                      rec.transfer("transfer.started", R.info("t2", "b.txt", state: .active)),
                      rec.transfer("transfer.finished", R.info("t1", "a.txt", state: .done)),  // lost
                      rec.transfer("transfer.failed", R.info("t2", "b.txt", state: .failed, error: TransferFailure(code: "disk_full", message: "no space"))),  // lost
                      rec.event("peer.connected", ["client_uuid": "u-x"])]
        var steps: [EventCursor.Step] = []
        var out: [NotifyIntent] = []
        for e in [events[0], events[1], events[4]] {
            let step = cursor.take(id: Int(e["id"]!.intValue!), boot: e["boot"]!.stringValue!)
            steps.append(step)
            out += p.take(event: e, now: 1)
        }
        #expect(steps == [.deliver, .deliver, .gap(missed: 3...4)])
        #expect(p.followedTransfers == ["t1", "t2"])
        out += p.reconcile([R.info("t1", "a.txt", state: .done),
                            R.info("t2", "b.txt", state: .failed, error: TransferFailure(code: "disk_full", message: "no space"))], now: 2)
        out += p.tick(now: 4)
        #expect(out.map(\.summary) == ["photos: a peer connected", "Could not download b.txt", "Downloaded a.txt"])
        // With the invitation's name, the peer is named.
        #expect(p.take(event: rec.event("peer.connected", ["client_uuid": "u-y", "peer": "nas"]), now: 11).map(\.summary) == ["photos: nas connected"])
        // The lost events replayed later (a resubscription that overlaps): nothing again.
        #expect(p.take(event: events[2], now: 5) + p.take(event: events[3], now: 5) + p.tick(now: 10) == [])
    }

    /// annexd restarted: the new boot's events are read from its start; what the old boot
    /// showed is not shown again, what happened in the new boot before the reconnection is.
    @Test func aNewBootReplaysItsEventsWithoutRepeatingTheOldOnes() {
        var old = R(boot: "boot-1")
        var cursor = EventCursor()
        var p = NotifyPolicy(timing: .init(progressInterval: 5, quietPeriod: 2, flapWindow: 60))
        cursor.subscribed(boot: "boot-1", latest: 0, since: nil)
        var out: [NotifyIntent] = []
        for e in [old.transfer("transfer.finished", R.info("t1", "a.txt", state: .done)),
                  old.transfer("transfer.started", R.info("t2", "b.txt", state: .active))] {
            #expect(cursor.take(id: Int(e["id"]!.intValue!), boot: "boot-1") == .deliver)
            out += p.take(event: e, now: 0)
        }
        out += p.tick(now: 3)
        #expect(out.map(\.summary) == ["Downloaded a.txt"])

        // The connection ends; the daemon comes back with a new boot.
        #expect(cursor.connectionFailed(random: 0.5) == 1)
        #expect(cursor.connectionFailed(random: 0.5) == 2)
        #expect(cursor.plan(daemonBoot: "boot-1") == .resume(since: 2))
        #expect(cursor.plan(daemonBoot: "boot-2") == .newBoot)
        #expect(EventCursor.since(.newBoot) == 0)
        cursor.subscribed(boot: "boot-2", latest: 3, since: 0)
        #expect(cursor.connectionFailed(random: 0.5) == 1)
        cursor.subscribed(boot: "boot-2", latest: 3, since: 0)

        // The replay of the new boot: t2 brought back queued, then done; t3 done.
        out = []
        var new = R(boot: "boot-2")
        for e in [new.transfer("transfer.queued", R.info("t2", "b.txt", state: .queued)),
                  new.transfer("transfer.finished", R.info("t2", "b.txt", state: .done)),
                  new.transfer("transfer.finished", R.info("t3", "c.txt", state: .done))] {
            #expect(cursor.take(id: Int(e["id"]!.intValue!), boot: "boot-2") == .deliver)
            out += p.take(event: e, now: 10)
        }
        // Then the transfers re-read: nothing the replay showed is shown again.
        out += p.reconcile([R.info("t2", "b.txt", state: .done)], now: 10)
        out += p.tick(now: 13)
        #expect(out == [NotifyIntent(slot: .transfers(repo: repo), replaces: false, summary: "Downloaded 2 files",
                                     body: "b.txt, c.txt\nin photos", category: "transfer.complete")])
        // Resuming the same boot later: the events before are duplicates.
        #expect(cursor.plan(daemonBoot: "boot-2") == .resume(since: 3))
        #expect(cursor.take(id: 3, boot: "boot-2") == .duplicate)
    }

    @Test func anOverflowResumesFromWhereItStoppedUnlessThoseEventsAreGone() {
        var cursor = EventCursor()
        #expect(cursor.plan(daemonBoot: "b") == .first)
        cursor.subscribed(boot: "b", latest: 10, since: nil)
        #expect(cursor.take(id: 10, boot: "b") == .duplicate)  // the snapshot
        #expect(cursor.take(id: 11, boot: "b") == .deliver)
        cursor.overflowed(resumeFrom: 40, boot: "b")
        #expect(cursor.plan(daemonBoot: "b") == .resume(since: 40))
        cursor.subscribed(boot: "b", latest: 90, since: 40)
        cursor.overflowed(resumeFrom: 40, boot: "b")  // again at once: gone
        #expect(cursor.plan(daemonBoot: "b") == .resync)
        #expect(EventCursor.since(.resync) == nil)
    }

    @Test func dryRunLines() {
        let i = NotifyIntent(slot: .failure(transfer: "t9"), summary: "Could not download lost", body: "gone\nreally",
                             urgency: .critical, category: "transfer.error", actions: [.retry(["t9"])])
        #expect(i.line == "[critical transfer.error] Could not download lost — gone / really {Retry} (replaces failure:t9)")
        #expect(i.json["actions"]?[0]?["retry"]?[0]?.stringValue == "t9")
    }
}
