import Crypto
import Shared

/// The transfer engine's bookkeeping, pure (no I/O, time passed in): what is queued, what may
/// start next within the limits, and what a failure leads to (the next source, a retry after a
/// doubling delay, or the end). The service around it does the moving.
///
/// Identity: a get is (repository, key): content is fetched once, from whichever peer has it; a
/// put is (repository, peer, key). The id is derived from the identity, so asking again (even
/// after a restart) names the same transfer.
struct TransferQueue: Sendable {
    struct Entry: Sendable, Equatable {
        var info: TransferInfo
        var repoUUID: String
        /// A get: the peers to try, best first; a put: the destination only.
        var candidates: [TransferPeer]
        /// Index in `candidates` of the peer the current (or next) attempt uses.
        var candidate = 0
        var peer: TransferPeer? { candidates.indices.contains(candidate) ? candidates[candidate] : nil }
        /// A file small enough that its transfer is mostly round trips.
        var isSmall: Bool { (info.size ?? Int64.max) <= TransferSettings.smallFileSize }
    }

    struct Limits: Sendable, Equatable {
        /// Transfers running at once, over all repositories.
        var jobs = 4
        /// Transfers running at once with one peer.
        var perPeer = 4
        /// Transfers of small files running at once with one peer, besides the others (they wait on
        /// round trips, not bandwidth: over Tor, one at a time would leave the circuit idle).
        var smallPerPeer = 16
        /// Small files running at once over all peers.
        var smallJobs = 64
        /// Per repository: transfers of large files running at once (its annex.jobs).
        var repoJobs: [String: Int] = [:]
        /// Retries after the first attempt (annex.retry); each waits twice the delay of the one before.
        var retries = 10
        /// The first retry's delay in seconds (annex.retry-delay).
        var retryDelay: Double = 1
        var maxRetryDelay: Double = 600
    }

    /// Finished transfers kept for transfer.list.
    static let keepFinished = 1000

    /// Codes of failures worth another attempt.
    static let retryable: Set<String> = ["peer_unreachable", "stalled", "protocol_error", "io_error", "verify_failed", "in_progress"]

    private(set) var entries: [String: Entry] = [:]
    /// Ids, oldest first.
    private(set) var order: [String] = []
    /// The repository the last started transfer belonged to (round robin between repositories).
    private var lastRepo: String?

    static func id(repoUUID: String, direction: TransferDirection, peer: String?, key: String) -> String {
        let identity = [repoUUID, direction.rawValue, direction == .put ? (peer ?? "") : "", key].joined(separator: "\n")
        return "t" + Hex.encode(SHA256.hash(data: Array(identity.utf8)).prefix(8))
    }

    subscript(id: String) -> Entry? { entries[id] }

    /// Transfers not yet done, failed for good or canceled.
    var unfinishedCount: Int { entries.values.reduce(0) { $0 + ($1.info.state.isFinal ? 0 : 1) } }

    /// Adds a transfer, or returns the one with the same identity (queued again if it had ended).
    mutating func enqueue(repo: String, repoUUID: String, direction: TransferDirection, key: String, file: String?,
                          size: Int64?, candidates: [TransferPeer], now: Double) -> (info: TransferInfo, isNew: Bool) {
        let id = Self.id(repoUUID: repoUUID, direction: direction, peer: candidates.first?.uuid, key: key)
        if var existing = entries[id] {
            guard existing.info.state.isFinal else { return (existing.info, false) }
            existing.candidates = candidates
            existing.candidate = 0
            existing.info.peer = candidates.first
            existing.info.state = .queued
            existing.info.error = nil
            existing.info.nextRetry = nil
            existing.info.attempt = 0
            existing.info.queuedAt = now
            entries[id] = existing
            order.removeAll { $0 == id }
            order.append(id)
            return (existing.info, true)
        }
        let info = TransferInfo(id: id, repo: repo, direction: direction, peer: candidates.first, key: key, file: file,
                                size: size, queuedAt: now)
        entries[id] = Entry(info: info, repoUUID: repoUUID, candidates: candidates)
        order.append(id)
        return (info, true)
    }

    /// Puts back a transfer read from the state directory (as queued; what ran is run again).
    mutating func restore(_ entry: Entry) {
        var e = entry
        if !e.info.state.isFinal && e.info.state != .paused { e.info.state = .queued }
        e.info.rate = 0
        e.info.eta = nil
        if entries[e.info.id] == nil { order.append(e.info.id) }
        entries[e.info.id] = e
    }

    /// Running transfers, in order (lazily: a queue of 10 000 is not copied for each look).
    var active: some Sequence<Entry> {
        order.lazy.compactMap { entries[$0] }.filter { $0.info.state == .active || $0.info.state == .verifying }
    }

    /// The transfers that are not over (what the state directory keeps).
    var unfinished: [Entry] { unfinished(among: order[...]) }

    /// Those of `ids` that are not over, in that order (for saving a long queue a part at a time).
    func unfinished(among ids: ArraySlice<String>) -> [Entry] {
        ids.compactMap { entries[$0] }.filter { !$0.info.state.isFinal }
    }

    /// The next transfer to start, marked active; nil when none may start now.
    /// Round robin between repositories; within one, oldest first. `busy`: transfers whose
    /// last attempt is still stopping (paused and resumed at once) wait for it.
    mutating func startNext(now: Double, limits: Limits, busy: Set<String> = []) -> Entry? {
        var load = Load()
        for e in active { load.count(e) }
        var firstOfRepo: [String: String] = [:], repos: [String] = []
        for id in order {
            guard let e = entries[id], e.info.state == .queued, (e.info.nextRetry ?? 0) <= now, !busy.contains(id),
                  firstOfRepo[e.repoUUID] == nil, load.admits(e, limits) else { continue }
            firstOfRepo[e.repoUUID] = id
            repos.append(e.repoUUID)
        }
        guard !repos.isEmpty else { return nil }
        let after = lastRepo.flatMap { repos.firstIndex(of: $0) }.map { $0 + 1 } ?? 0
        let repo = repos[after < repos.count ? after : 0]
        let id = firstOfRepo[repo]!
        lastRepo = repo
        var e = entries[id]!
        e.info.state = .active
        e.info.attempt += 1
        e.info.nextRetry = nil
        e.info.peer = e.peer
        entries[id] = e
        return e
    }

    /// What is running, counted the ways the limits count it.
    private struct Load {
        var large = 0, small = 0
        var largeByPeer: [String: Int] = [:], smallByPeer: [String: Int] = [:], largeByRepo: [String: Int] = [:]

        mutating func count(_ e: Entry) {
            let peer = e.peer?.uuid ?? ""
            if e.isSmall {
                small += 1
                smallByPeer[peer, default: 0] += 1
            } else {
                large += 1
                largeByPeer[peer, default: 0] += 1
                largeByRepo[e.repoUUID, default: 0] += 1
            }
        }

        func admits(_ e: Entry, _ limits: Limits) -> Bool {
            let peer = e.peer?.uuid ?? ""
            if e.isSmall { return small < limits.smallJobs && smallByPeer[peer, default: 0] < limits.smallPerPeer }
            return large < limits.jobs && largeByPeer[peer, default: 0] < limits.perPeer
                && largeByRepo[e.repoUUID, default: 0] < limits.repoJobs[e.repoUUID, default: .max]
        }
    }

    /// When the earliest waiting retry is due (for the scheduler's timer).
    var nextRetryTime: Double? {
        order.compactMap { entries[$0] }.filter { $0.info.state == .queued }.compactMap(\.info.nextRetry).min()
    }

    mutating func update(_ id: String, _ change: (inout TransferInfo) -> Void) {
        guard var e = entries[id] else { return }
        change(&e.info)
        entries[id] = e
    }

    mutating func finish(_ id: String) {
        update(id) { $0.state = .done; $0.error = nil; $0.rate = 0; $0.eta = 0; $0.nextRetry = nil }
        prune()
    }

    /// An attempt failed. A get tries its next source at once; when none is left (or for a put), a
    /// retryable failure waits `retryDelay × 2^(attempt-1)` (capped) unless the retries are used up.
    mutating func fail(_ id: String, _ failure: TransferFailure, now: Double, limits: Limits) -> TransferInfo? {
        guard var e = entries[id] else { return nil }
        e.info.error = failure
        e.info.rate = 0
        e.info.eta = nil
        let peerSpecific = failure.code != "disk_full" && failure.code != "canceled"
        if e.info.direction == .get, peerSpecific, e.candidate + 1 < e.candidates.count {
            e.candidate += 1
            e.info.peer = e.peer
            e.info.state = .queued
            e.info.nextRetry = nil
            e.info.attempt -= 1  // the same attempt goes on with the next source
            entries[id] = e
            return e.info
        }
        e.candidate = 0
        e.info.peer = e.peer
        if Self.retryable.contains(failure.code) && e.info.attempt <= limits.retries {
            let delay = min(limits.maxRetryDelay, limits.retryDelay * Double(1 << min(e.info.attempt - 1, 30)))
            e.info.state = .queued
            e.info.nextRetry = now + delay
        } else {
            e.info.state = .failed
            e.info.nextRetry = nil
        }
        entries[id] = e
        prune()
        return e.info
    }

    /// Applies a user's action to the selected transfers; returns those it changed.
    mutating func apply(_ action: Action, to ids: [String], now: Double) -> [TransferInfo] {
        var changed: [TransferInfo] = []
        for id in ids {
            guard var e = entries[id] else { continue }
            let s = e.info.state
            switch action {
            case .pause:
                guard s == .queued || s == .active || s == .verifying else { continue }
                e.info.state = .paused
            case .resume:
                guard s == .paused else { continue }
                e.info.state = .queued
            case .cancel:
                guard !s.isFinal else { continue }
                e.info.state = .canceled
                e.info.error = TransferFailure(code: "canceled", message: "canceled (transfer.cancel)")
            case .retry:
                guard s == .failed || s == .canceled || (s == .queued && e.info.nextRetry != nil) else { continue }
                e.info.state = .queued
                e.info.attempt = 0
                e.candidate = 0
                e.info.peer = e.peer
            }
            e.info.nextRetry = nil
            e.info.rate = 0
            e.info.eta = nil
            entries[id] = e
            changed.append(e.info)
        }
        return changed
    }

    enum Action: Sendable { case pause, resume, cancel, retry }

    /// Ids an action with `all` applies to, oldest first (optionally of one repository).
    func ids(repoUUID: String?) -> [String] {
        order.filter { id in repoUUID == nil || entries[id]?.repoUUID == repoUUID }
    }

    /// Forgets the oldest finished transfers beyond `keepFinished`.
    private mutating func prune(keep: Int = keepFinished) {
        let finished = order.filter { entries[$0]?.info.state.isFinal == true }
        guard finished.count > keep else { return }
        let drop = Set(finished.prefix(finished.count - keep))
        order.removeAll { drop.contains($0) }
        for id in drop { entries[id] = nil }
    }

    /// Forgets every transfer of a repository (it was removed).
    mutating func removeRepo(_ uuid: String) {
        order.removeAll { entries[$0]?.repoUUID == uuid }
        entries = entries.filter { $0.value.repoUUID != uuid }
    }
}
