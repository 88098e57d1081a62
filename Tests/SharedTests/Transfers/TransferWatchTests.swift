import Testing
@testable import Shared

/// A transfer as the daemon would describe it.
func transfer(_ id: String, _ state: TransferState, file: String? = "photos/a.jpg", direction: TransferDirection = .get,
              size: Int64? = 2_000_000, bytes: Int64 = 0, attempt: Int = 1, nextRetry: Double? = nil,
              error: TransferFailure? = nil, repo: String = "/r", rate: Double = 0, eta: Double? = nil) -> TransferInfo {
    TransferInfo(id: id, repo: repo, direction: direction, peer: TransferPeer(uuid: "5a1e0000-1111-2222-3333-444455556666", name: "nas"),
                 key: "SHA256E-s2000000--abc.jpg", file: file, size: size, state: state, bytes: bytes, rate: rate, eta: eta,
                 attempt: attempt, nextRetry: nextRetry, error: error, queuedAt: 1000)
}

/// An event's params exactly as the daemon sends them: the envelope, then the event's declared fields.
func eventParams<E: AnnexdEvent>(_ e: E, id: Int64 = 1) -> JSONValue {
    var o: JSONObject = ["id": .int(id), "boot": "b", "type": .string(E.type), "time": 1000.5]
    for (k, v) in e.values { o[k] = v }
    return .object(o)
}

let repoR = EventRepo(path: "/r", uuid: "u")
let unreachable = TransferFailure(code: "peer_unreachable", message: "nas did not answer over tor")

@Suite struct TransferWatchTests {
    @Test func settledStates() {
        #expect(transfer("a", .done).isSettled)
        #expect(transfer("a", .canceled).isSettled)
        #expect(transfer("a", .failed, error: unreachable).isSettled)
        #expect(!transfer("a", .failed, nextRetry: 2000, error: unreachable).isSettled, "a failure with next_retry will be retried")
        for s in [TransferState.queued, .active, .paused, .verifying] { #expect(!transfer("a", s).isSettled) }
    }

    @Test func followsEventsOfItsTransfersToDone() throws {
        var w = TransferWatch([transfer("a", .queued), transfer("b", .queued, file: "b.jpg")])
        #expect(!w.isSettled)
        #expect(try w.apply(event: eventParams(TransferStarted(repo: repoR, transfer: transfer("a", .active)))).map(\.id) == ["a"])
        // Progress changes bytes, not states: nothing worth a line.
        let progress = TransferProgress(repo: repoR, transfers: [transfer("a", .active, bytes: 500_000, rate: 1e6, eta: 1.5)])
        #expect(try w.apply(event: eventParams(progress)).isEmpty)
        #expect(w.transfers["a"]?.bytes == 500_000)
        _ = try w.apply(event: eventParams(TransferFinished(repo: repoR, transfer: transfer("a", .done, bytes: 2_000_000))))
        _ = try w.apply(event: eventParams(TransferFinished(repo: repoR, transfer: transfer("b", .done, bytes: 2_000_000))))
        #expect(w.isSettled)
        #expect(w.outcome.succeeded && w.outcome.exitStatus == 0 && w.outcome.done.count == 2)
    }

    @Test func aFailureWithNextRetryIsNotTheEnd() throws {
        var w = TransferWatch([transfer("a", .active)])
        let retrying = transfer("a", .failed, nextRetry: 1030, error: unreachable)
        #expect(try w.apply(event: eventParams(TransferFailed(repo: repoR, transfer: retrying))).count == 1)
        #expect(!w.isSettled)
        #expect(try w.apply(event: eventParams(TransferStarted(repo: repoR, transfer: transfer("a", .active, attempt: 2)))).count == 1)
        _ = try w.apply(event: eventParams(TransferFailed(repo: repoR, transfer: transfer("a", .failed, attempt: 2, error: unreachable))))
        #expect(w.isSettled)
        let o = w.outcome
        #expect(!o.succeeded && o.exitStatus == 1 && o.failed.map(\.id) == ["a"] && o.failed.first?.error == unreachable)
    }

    @Test func canceledIsNotSuccess() throws {
        var w = TransferWatch([transfer("a", .done), transfer("b", .queued)])
        _ = try w.apply(event: eventParams(TransferCanceled(repo: repoR, transfer: transfer("b", .canceled))))
        #expect(w.isSettled && w.outcome.exitStatus == 1 && w.outcome.canceled.map(\.id) == ["b"])
    }

    @Test func ignoresOtherTransfersUnlessAdopting() throws {
        var mine = TransferWatch([transfer("a", .queued)])
        let other = eventParams(TransferQueued(repo: repoR, transfer: transfer("z", .queued)))
        #expect(try mine.apply(event: other).isEmpty && mine.ids == ["a"] && !mine.concerns(event: other))
        var all = TransferWatch(adopting: .all)
        #expect(try all.apply(event: other).map(\.id) == ["z"] && all.concerns(event: other))
        var oneRepo = TransferWatch(adopting: .repo("/elsewhere"))
        #expect(try oneRepo.apply(event: other).isEmpty && oneRepo.ids.isEmpty)
        #expect(TransferWatch().isSettled, "nothing watched: nothing to wait for")
    }

    @Test func aLateEventDoesNotUnsettleATransfer() throws {
        // transfer.start answered "done" but the started event of the same attempt arrives after.
        var w = TransferWatch([transfer("a", .done, bytes: 2_000_000)])
        #expect(try w.apply(event: eventParams(TransferStarted(repo: repoR, transfer: transfer("a", .active)))).isEmpty)
        #expect(w.isSettled)
        // A later attempt (someone retried) is taken in.
        #expect(try w.apply(event: eventParams(TransferStarted(repo: repoR, transfer: transfer("a", .active, attempt: 2)))).count == 1)
        #expect(!w.isSettled)
    }

    @Test func otherEventsCarryNoTransfers() throws {
        var w = TransferWatch([transfer("a", .queued)])
        #expect(try w.apply(event: ["type": "daemon.stopping", "id": 3]).isEmpty)
        #expect(throws: JSONDecodingError.self) { try w.apply(event: ["type": "transfer.queued", "transfer": ["id": "a"]]) }
    }

    @Test func summaryJSON() {
        let o = TransferWatch([transfer("a", .done), transfer("b", .failed, error: unreachable)]).outcome
        let s = o.json["summary"]
        #expect(s?["ok"] == false && s?["done"] == 1 && s?["failed"] == 1 && s?["canceled"] == 0 && s?["pending"] == 0)
        #expect(s?["transfers"]?.arrayValue?.count == 2)
    }
}

@Suite struct RepoRelativePathTests {
    @Test func relativeToTheCurrentDirectoryInsideTheRepository() throws {
        #expect(try RepoRelativePath.resolve("a.jpg", cwd: "/home/u/photos/2024", top: "/home/u/photos") == "2024/a.jpg")
        #expect(try RepoRelativePath.resolve("../b/./c.jpg", cwd: "/home/u/photos/2024", top: "/home/u/photos") == "b/c.jpg")
        #expect(try RepoRelativePath.resolve(".", cwd: "/home/u/photos/2024", top: "/home/u/photos/") == "2024")
        #expect(try RepoRelativePath.resolve(".", cwd: "/home/u/photos", top: "/home/u/photos") == ".")
        #expect(try RepoRelativePath.resolve("x//y/", cwd: "/home/u/photos", top: "/home/u/photos") == "x/y")
    }

    @Test func absolutePathsAndOutsideTheRepository() throws {
        #expect(try RepoRelativePath.resolve("/home/u/photos/a.jpg", cwd: "/tmp", top: "/home/u/photos") == "a.jpg")
        // From outside the repository (--repo), relative paths are relative to its top.
        #expect(try RepoRelativePath.resolve("2024/a.jpg", cwd: "/tmp", top: "/home/u/photos") == "2024/a.jpg")
        #expect(throws: RepoRelativePath.OutsideRepository(path: "../x", top: "/home/u/photos")) {
            try RepoRelativePath.resolve("../x", cwd: "/home/u/photos", top: "/home/u/photos")
        }
        #expect(throws: RepoRelativePath.OutsideRepository.self) {
            try RepoRelativePath.resolve("/home/u/photos-old/a.jpg", cwd: "/home/u/photos", top: "/home/u/photos")
        }
    }
}

@Suite struct TransferWatchStepTests {
    @Test func notificationsOnAFollowingConnection() throws {
        var w = TransferWatch([transfer("a", .queued)])
        let started = eventParams(TransferStarted(repo: repoR, transfer: transfer("a", .active)), id: 7)
        #expect(try w.take(.event(started.objectValue!)) == .event(started, changed: [transfer("a", .active)]))
        let progress = eventParams(TransferProgress(repo: repoR, transfers: [transfer("a", .active, bytes: 10)]), id: 8)
        #expect(try w.take(.event(progress.objectValue!)) == .event(progress, changed: []))
        #expect(w.transfers["a"]?.bytes == 10)
        let snapshot = RPCNotification.event(["id": 6, "type": "snapshot", "repos": [], "connections": 0])
        #expect(try w.take(snapshot) == .other)
        #expect(try w.take(.event(["id": 9, "type": "daemon.stopping"])) == .daemonStopping)
        let overflow = RPCNotification(method: "event.overflow", params: ["resume_from": 8, "boot": "b", "message": "behind"])
        #expect(try w.take(overflow) == .overflow(resumeFrom: 8))
        #expect(try w.take(RPCNotification(method: "something.else")) == .other)
    }

    @Test func anUnreadableTransferEventSaysWhy() throws {
        var w = TransferWatch([transfer("a", .queued)])
        let bad = RPCNotification.event(["id": 3, "type": "transfer.finished", "transfer": ["id": "a", "state": "teleported"]])
        let error = try #require(throws: TransferWatch.UnreadableEvent.self) { try w.take(bad) }
        #expect(error.description.hasPrefix("annexd sent a transfer.finished event annex-cli cannot read ("))
        #expect(error.description.hasSuffix("); are annexd and annex-cli the same version?"))
    }

    /// A whole get as the daemon would report it, in order: two files, one retried once and
    /// then failing for good; the watch settles exactly at the last event, and fails.
    @Test func aWholeSequenceSettlesAtItsLastEvent() throws {
        var w = TransferWatch([transfer("a", .queued), transfer("b", .queued, file: "b.jpg")])
        let events: [any AnnexdEvent] = [
            TransferStarted(repo: repoR, transfer: transfer("a", .active)),
            TransferStarted(repo: repoR, transfer: transfer("b", .active, file: "b.jpg")),
            TransferProgress(repo: repoR, transfers: [transfer("a", .active, bytes: 1000), transfer("b", .active, file: "b.jpg", bytes: 5)]),
            TransferFailed(repo: repoR, transfer: transfer("b", .failed, file: "b.jpg", nextRetry: 1030, error: unreachable)),
            TransferFinished(repo: repoR, transfer: transfer("a", .done, bytes: 2_000_000)),
            TransferStarted(repo: repoR, transfer: transfer("b", .active, file: "b.jpg", attempt: 2)),
            TransferFailed(repo: repoR, transfer: transfer("b", .failed, file: "b.jpg", attempt: 2, error: unreachable)),
        ]
        var settledAt: [Bool] = []
        var lines: [String] = []
        for (i, e) in events.enumerated() {
            guard case .event(_, let changed) = try w.take(.event(eventObject(e, id: Int64(i + 1)))) else { Issue.record("not an event"); return }
            lines += changed.map { TransferRendering.line($0, now: 1000) }
            settledAt.append(w.isSettled)
        }
        #expect(settledAt == [false, false, false, false, false, false, true])
        #expect(lines == [
            "get photos/a.jpg from nas: started",
            "get b.jpg from nas: started",
            "get b.jpg from nas: failed: nas did not answer over tor (peer_unreachable); retrying in 30s",
            "get photos/a.jpg from nas: done (1.9 MiB)",
            "get b.jpg from nas: started (attempt 2)",
            "get b.jpg from nas: failed: nas did not answer over tor (peer_unreachable)",
        ])
        #expect(w.outcome.exitStatus == 1 && w.outcome.done.map(\.id) == ["a"] && w.outcome.failed.map(\.id) == ["b"])
    }
}

func eventObject(_ e: any AnnexdEvent, id: Int64) -> JSONObject {
    func open<E: AnnexdEvent>(_ e: E) -> JSONObject { eventParams(e, id: id).objectValue! }
    return open(e)
}
