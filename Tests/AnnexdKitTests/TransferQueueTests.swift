import Testing
@testable import AnnexdKit
@testable import Shared

/// The transfer queue's rules, without I/O: identity, limits, fairness, failover and backoff.
@Suite struct TransferQueueTests {
    let nas = TransferPeer(uuid: "u-nas", name: "nas"), laptop = TransferPeer(uuid: "u-laptop", name: "laptop")

    private func enqueue(_ q: inout TransferQueue, repo: String = "r1", _ key: String, _ direction: TransferDirection = .get,
                         peers: [TransferPeer]? = nil, size: Int64 = 10 << 20) -> TransferInfo {
        q.enqueue(repo: "/" + repo, repoUUID: repo, direction: direction, key: key, file: nil, size: size,
                  candidates: peers ?? [nas, laptop], now: 0).info
    }

    @Test func askingTwiceGivesTheSameTransfer() {
        var q = TransferQueue()
        let a = enqueue(&q, "K1")
        let b = q.enqueue(repo: "/r1", repoUUID: "r1", direction: .get, key: "K1", file: "f", size: 10, candidates: [laptop], now: 5)
        #expect(!b.isNew && b.info.id == a.id && q.order.count == 1)
        // A put is per peer; a get of the same key is another transfer.
        let p1 = enqueue(&q, "K1", .put, peers: [nas]), p2 = enqueue(&q, "K1", .put, peers: [laptop])
        #expect(Set([a.id, p1.id, p2.id]).count == 3)
        // The id does not depend on anything but the identity (stable across restarts).
        #expect(TransferQueue.id(repoUUID: "r1", direction: .get, peer: "x", key: "K1") == a.id)
    }

    @Test func limitsAreGlobalAndPerPeer() {
        var q = TransferQueue()
        for k in ["K1", "K2", "K3", "K4"] { _ = enqueue(&q, k, peers: [nas]) }
        _ = enqueue(&q, "K5", peers: [laptop])
        var limits = TransferQueue.Limits()
        limits.jobs = 3
        limits.perPeer = 2
        let started = (0..<5).compactMap { _ in q.startNext(now: 0, limits: limits)?.info.key }
        // Two from nas (its limit), then laptop's, then nothing (3 in all).
        #expect(started == ["K1", "K2", "K5"])
    }

    /// Small files wait on round trips, not bandwidth: they run in a lane of their own, many per
    /// peer, beside the large ones; a repository's annex.jobs caps its large ones.
    @Test func smallFilesHaveTheirOwnLaneAndARepositoryItsCap() {
        var q = TransferQueue()
        for k in ["L1", "L2", "L3"] { _ = enqueue(&q, k, peers: [nas]) }
        for n in 1...5 { _ = enqueue(&q, "S\(n)", peers: [nas], size: TransferSettings.smallFileSize) }
        _ = enqueue(&q, "L4", peers: [nas], size: TransferSettings.smallFileSize + 1)
        var limits = TransferQueue.Limits()
        limits.jobs = 2
        limits.perPeer = 2
        limits.smallPerPeer = 3
        let started = (0..<9).compactMap { _ in q.startNext(now: 0, limits: limits)?.info.key }
        #expect(started == ["L1", "L2", "S1", "S2", "S3"], "two large (jobs), three small (small_jobs), no more")
        // The global small cap.
        var q2 = TransferQueue()
        for n in 1...4 { _ = enqueue(&q2, "S\(n)", peers: [TransferPeer(uuid: "p\(n)", name: nil)], size: 1) }
        limits.smallJobs = 3
        #expect((0..<4).compactMap { _ in q2.startNext(now: 0, limits: limits)?.info.key } == ["S1", "S2", "S3"])
        // annex.jobs=1 in repository r1: one large transfer at a time there, while r2 runs its own.
        var q3 = TransferQueue()
        for k in ["A1", "A2"] { _ = enqueue(&q3, repo: "r1", k, peers: [TransferPeer(uuid: "pa-\(k)", name: nil)]) }
        _ = enqueue(&q3, repo: "r2", "B1", peers: [laptop])
        limits = TransferQueue.Limits()
        limits.repoJobs = ["r1": 1]
        #expect((0..<3).compactMap { _ in q3.startNext(now: 0, limits: limits)?.info.key } == ["A1", "B1"])
    }

    @Test func repositoriesTakeTurns() {
        var q = TransferQueue()
        for k in ["A1", "A2", "A3"] { _ = enqueue(&q, repo: "ra", k, peers: [TransferPeer(uuid: "pa-\(k)", name: nil)]) }
        for k in ["B1", "B2"] { _ = enqueue(&q, repo: "rb", k, peers: [TransferPeer(uuid: "pb-\(k)", name: nil)]) }
        let limits = TransferQueue.Limits()
        let order = (0..<4).compactMap { _ in q.startNext(now: 0, limits: limits)?.info.key }
        #expect(order == ["A1", "B1", "A2", "B2"])
    }

    @Test func aGetTriesTheNextSourceThenBacksOffDoubling() throws {
        var q = TransferQueue()
        let id = enqueue(&q, "K1").id
        var limits = TransferQueue.Limits()
        limits.retryDelay = 2
        limits.retries = 2
        let unreachable = TransferFailure(code: "peer_unreachable", message: "gone")
        let firstStart = q.startNext(now: 0, limits: limits)
        #expect(firstStart?.peer == nas)
        // The next source at once, same attempt.
        let nextResult = q.fail(id, unreachable, now: 10, limits: limits)
        let next = try #require(nextResult)
        #expect(next.state == .queued && next.nextRetry == nil && next.peer == laptop)
        let secondStart = q.startNext(now: 10, limits: limits)
        #expect(secondStart?.info.attempt == 1)
        // No source left: wait 2 s, then 4 s, then give up.
        let firstResult = q.fail(id, unreachable, now: 10, limits: limits)
        let first = try #require(firstResult)
        #expect(first.nextRetry == 12 && first.peer == nas)
        let early = q.startNext(now: 11, limits: limits)
        #expect(early == nil)
        #expect(q.nextRetryTime == 12)
        let retried = q.startNext(now: 12, limits: limits)
        #expect(retried?.info.attempt == 2)
        _ = q.fail(id, unreachable, now: 20, limits: limits)
        let onLaptop = q.startNext(now: 20, limits: limits)
        #expect(onLaptop?.info.attempt == 2)  // laptop, same attempt
        let secondResult = q.fail(id, unreachable, now: 20, limits: limits)
        let second = try #require(secondResult)
        #expect(second.nextRetry == 24)
        _ = q.startNext(now: 24, limits: limits)
        _ = q.fail(id, unreachable, now: 30, limits: limits)
        _ = q.startNext(now: 30, limits: limits)
        let lastResult = q.fail(id, unreachable, now: 30, limits: limits)
        let last = try #require(lastResult)
        #expect(last.state == .failed && last.nextRetry == nil && last.error?.code == "peer_unreachable")
    }

    @Test func failuresNotWorthRetryingEndAtOnce() throws {
        var q = TransferQueue()
        let id = enqueue(&q, "K1", .put, peers: [nas]).id
        _ = q.startNext(now: 0, limits: .init())
        let endResult = q.fail(id, TransferFailure(code: "auth_failed", message: "no"), now: 1, limits: .init())
        let end = try #require(endResult)
        #expect(end.state == .failed && end.nextRetry == nil)
        // retry queues it again from the start.
        let again = q.apply(.retry, to: [id], now: 2)
        #expect(again.first?.state == .queued && again.first?.attempt == 0)
    }

    @Test func pauseResumeCancelApplyOnlyWhereTheyMeanSomething() {
        var q = TransferQueue()
        let a = enqueue(&q, "K1").id, b = enqueue(&q, "K2").id
        let r0 = q.apply(.resume, to: [a], now: 0)
        #expect(r0.isEmpty)
        let p = q.apply(.pause, to: [a, b], now: 0)
        #expect(p.map(\.state) == [.paused, .paused])
        let none = q.startNext(now: 0, limits: .init())
        #expect(none == nil, "paused transfers do not start")
        let r1 = q.apply(.resume, to: [a], now: 0)
        #expect(r1.map(\.state) == [.queued])
        let c = q.apply(.cancel, to: [a, b], now: 0)
        #expect(c.map(\.state) == [.canceled, .canceled])
        let c2 = q.apply(.cancel, to: [a], now: 0)
        #expect(c2.isEmpty)
        #expect(q.unfinished.isEmpty)
        // Asking again for a canceled transfer queues it again.
        let again = enqueue(&q, "K1")
        #expect(again.state == .queued)
    }

    @Test func aTransferWhoseAttemptIsStillStoppingWaitsForIt() {
        var q = TransferQueue()
        let id = enqueue(&q, "K1").id
        _ = q.startNext(now: 0, limits: .init())
        _ = q.apply(.pause, to: [id], now: 0)
        _ = q.apply(.resume, to: [id], now: 0)
        let whileStopping = q.startNext(now: 0, limits: .init(), busy: [id])
        #expect(whileStopping == nil)
        let after = q.startNext(now: 0, limits: .init())
        #expect(after?.info.id == id)
    }

    @Test func finishedTransfersAreForgottenOldestFirstPastTheKeptNumber() {
        var q = TransferQueue()
        let n = TransferQueue.keepFinished + 5
        let ids = (0..<n).map { enqueue(&q, "K\($0)").id }
        let waiting = enqueue(&q, "waiting").id
        for id in ids { q.finish(id) }
        #expect(q.order.count == TransferQueue.keepFinished + 1)
        #expect(q.order.first == ids[5] && q.order.contains(waiting))
        #expect(q.unfinishedCount == 1)
    }
}
