#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import Shared
import Synchronization

/// Transfers owned by the daemon: a queue per repository (persisted in the state directory),
/// started within the concurrency limits, fair between repositories, each attempt on a thread
/// of its own (TransferWorker), retried with doubling delays, watched for stalls, reported as
/// events. The queue's rules are in the pure TransferQueue.
public final class TransferService: Sendable {
    public enum TransferError: ServiceError {
        case notFound(id: String)
        case invalid(code: String, message: String)
        case unknownPeer(String, repo: String)
        case queueFull(unfinished: Int, asked: Int, limit: Int)

        public var kind: FailureKind {
            switch self {
            case .notFound, .unknownPeer: .notFound
            // git-annex that did not answer is not the caller's mistake.
            case .invalid(let code, _): code == "annex_timeout" ? .gitFailed : .invalidArgument
            case .queueFull: .busy
            }
        }
        public var reason: String {
            switch self {
            case .notFound: "transfer_not_found"
            case .invalid(let code, _): code
            case .unknownPeer: "remote_not_found"
            case .queueFull: "queue_full"
            }
        }
        public var description: String {
            switch self {
            case .notFound(let id): "no transfer \(id): `annex-cli transfers` lists them (finished ones are forgotten after a while)"
            case .invalid(_, let message): message
            case .unknownPeer(let peer, let repo): "\(repo) has no tor-annex remote named \(peer) or with that UUID; `annex-cli remote list` shows them"
            case .queueFull(let unfinished, let asked, let limit):
                "annexd already has \(unfinished) unfinished transfers and at most \(limit) may wait (annexd --max-queued-transfers); " +
                    "these \(asked) were not queued: ask again when some have finished, or cancel some (`annex-cli cancel --all`)"
            }
        }
    }

    let repos: RepositoryService
    let linking: LinkingService
    let dialer: PeerDialer
    let events: EventLog
    let logger: Logger
    private let queuePath: String
    private let queue = Mutex(TransferQueue())
    let settings: TransferSettingsStore
    private let running = Mutex<[String: RunningTransfer]>([:])
    private let pool = ConnectionPool()
    private let wakeUp = WakeSignal()
    private let dirty = Atomic<Bool>(false)
    /// Bytes moved per repository at the last progress event.
    private let progressMark = Mutex<[String: Int64]>([:])
    /// Each repository's git config for transfers (annex.jobs, annex.retry…), read when transfers are queued.
    private let gitConfigs = Mutex<[String: TransferGitConfig]>([:])

    /// At most this many unfinished transfers (queued, active, paused) at once; a start that
    /// would go past it is refused whole with `queue_full`.
    let maxUnfinished: Int

    init(repos: RepositoryService, linking: LinkingService, dialer: PeerDialer, events: EventLog, stateDir: String, logger: Logger,
         maxUnfinished: Int = 100_000) {
        self.maxUnfinished = maxUnfinished
        self.repos = repos
        self.linking = linking
        self.dialer = dialer
        self.events = events
        self.logger = logger
        queuePath = stateDir + "/transfers.json"
        settings = TransferSettingsStore(path: stateDir + "/transfer-settings.json", global: Self.readGitConfig(in: "/", logger: logger))
    }

    /// `git config` as git-annex reads it in `directory` (outside a repository: global and system only).
    private static func readGitConfig(in directory: String, logger: Logger) -> TransferGitConfig {
        guard let out = try? Command.run(["git", "config", "--get-regexp", TransferGitConfig.pattern], cwd: directory) else {
            return TransferGitConfig()
        }
        let config = TransferGitConfig(listing: out.stdout, cpus: ProcessInfo.processInfo.activeProcessorCount)
        for bad in config.ignored { logger.warning("git config in \(directory): \(bad) is not a value git-annex accepts; annexd ignores it") }
        return config
    }

    /// Reads a repository's transfer settings from its git config again.
    private func refreshGitConfig(_ repo: Registry.Repo) {
        let config = Self.readGitConfig(in: repo.path, logger: logger)
        gitConfigs.withLock { $0[repo.uuid] = config }
    }

    /// settings.get: with git config outside repositories read again.
    public func currentSettings() -> TransferSettings {
        settings.refresh(global: Self.readGitConfig(in: "/", logger: logger))
        return settings.settings
    }

    /// The repository's git config for transfers (empty until read).
    private func gitConfig(_ repoUUID: String) -> TransferGitConfig {
        gitConfigs.withLock { $0[repoUUID] } ?? TransferGitConfig()
    }

    /// Retry times are kept by a clock the wall clock's jumps do not move (RetryClock).
    private static let clock = RetryClock()
    private static func now() -> Double { clock.now() }

    /// Codes of attempts stopped from outside (pause, cancel, daemon stopping): not failures.
    static let stopCodes: Set<String> = ["paused", "canceled", "shutdown"]

    // MARK: RPC

    public func start(_ p: TransferStart.Params) async throws -> TransferListResult {
        let repo = try repos.lookup(p.repo)
        let annex = try repos.openRepo(repo)
        let remotes = linking.remotes(of: repo).compactMap { r -> TransferPeer? in
            r.uuid.map { TransferPeer(uuid: $0, name: r.name) }
        }
        var only: TransferPeer?
        if let wanted = p.peer {
            guard let match = remotes.first(where: { $0.name == wanted || $0.uuid == wanted }) else {
                throw TransferError.unknownPeer(wanted, repo: repo.path)
            }
            only = match
        }
        let wanted = try await Blocking.run { try Self.annexed(paths: p.paths ?? [], keys: p.keys ?? [], in: annex) }
        try await Blocking.run { self.refreshGitConfig(repo) }
        // Sources are ranked for a get from any peer; a get from one peer has only that one.
        let locations = p.direction == .get && only == nil
            ? ((try? await Blocking.run { try AnnexQueries.locations(of: wanted.map(\.key), in: annex) }) ?? [:]) : [:]
        let now = Self.now()
        let maxUnfinished = self.maxUnfinished
        func enqueueAll(_ q: inout TransferQueue) throws -> (infos: [TransferInfo], queued: [TransferInfo]) {
            let unfinished = q.unfinishedCount
            if unfinished + wanted.count > maxUnfinished {
                throw TransferError.queueFull(unfinished: unfinished, asked: wanted.count, limit: maxUnfinished)
            }
            var infos: [TransferInfo] = [], queued: [TransferInfo] = []
            for item in wanted {
                let candidates: [TransferPeer]
                if let only { candidates = [only] } else {
                    candidates = rankSources(remotes, holding: locations[item.key.serialized] ?? [], repoUUID: repo.uuid)
                }
                let (info, isNew) = q.enqueue(repo: repo.path, repoUUID: repo.uuid, direction: p.direction, key: item.key.serialized,
                                              file: item.file, size: item.size, candidates: candidates, now: now)
                infos.append(info)
                if isNew { queued.append(info) }
            }
            return (infos, queued)
        }
        // Saved before it is queued: a transfer annexd could not write down is refused
        // (state_unwritable), not run and then forgotten by the next start. The queue as it
        // will be is written from a copy; the queue itself changes only once that worked.
        var prospective = queue.withLock { $0 }
        _ = try enqueueAll(&prospective)
        try saveQueue(ids: prospective.order) { prospective.unfinished(among: $0) }
        let infos: [TransferInfo], queued: [TransferInfo]
        do {
            (infos, queued) = try queue.withLock { q in try enqueueAll(&q) }
        } catch {
            save()  // the queue filled meanwhile: the file must not keep what was refused
            throw error
        }
        for info in queued { events.publish(TransferQueued(repo: RepositoryService.eventRepo(repo), transfer: info)) }
        if queue.withLock({ $0.order }) != prospective.order { save() }
        wakeUp.signal()
        return TransferListResult(transfers: infos, total: infos.count)
    }

    /// Sources for a get, best first: peers the location log names (those with an idle
    /// connection first), then the other linked peers (the log may lag behind).
    private func rankSources(_ remotes: [TransferPeer], holding: [String], repoUUID: String) -> [TransferPeer] {
        let listed = remotes.filter { holding.contains($0.uuid) }
        let rest = remotes.filter { !holding.contains($0.uuid) }
        return listed.sorted { a, b in
            pool.has(repo: repoUUID, peer: a.uuid) && !pool.has(repo: repoUUID, peer: b.uuid)
        } + rest
    }

    private static func annexed(paths: [String], keys: [String], in annex: AnnexRepo) throws -> [AnnexQueries.Annexed] {
        var out: [AnnexQueries.Annexed] = []
        if !paths.isEmpty {
            do { out += try AnnexQueries.resolve(paths: paths, in: annex) } catch let e as AnnexQueries.QueryError {
                throw TransferError.invalid(code: e.code, message: e.description)
            }
        }
        for text in keys {
            do {
                let key = try AnnexKey(parsing: text)
                out.append(.init(file: nil, key: key, size: key.size))
            } catch {
                throw TransferError.invalid(code: "invalid_key", message: "params.keys: \(error)")
            }
        }
        return out
    }

    public func list(_ p: TransferList.Params) throws -> TransferListResult {
        let repoUUID = try p.repo.map { try repos.lookup($0).uuid }
        let all = queue.withLock { q in q.order.compactMap { q[$0] } }
            .filter { repoUUID == nil || $0.repoUUID == repoUUID }
            .map(\.info)
            .filter { p.states == nil || p.states!.contains($0.state) }
        return TransferListResult(transfers: Array(all.dropFirst(p.offset).prefix(p.limit)), total: all.count)
    }

    public func get(id: String) throws -> TransferInfo {
        guard let e = queue.withLock({ $0[id] }) else { throw TransferError.notFound(id: id) }
        return e.info
    }

    func act(_ action: TransferQueue.Action, _ s: TransferSelection) throws -> TransferListResult {
        let repoUUID = try s.repo.map { try repos.lookup($0).uuid }
        if let ids = s.ids, let unknown = queue.withLock({ q in ids.first { q[$0] == nil } }) {
            throw TransferError.notFound(id: unknown)
        }
        let changed = queue.withLock { q in q.apply(action, to: s.all ? q.ids(repoUUID: repoUUID) : s.ids ?? [], now: Self.now()) }
        for info in changed {
            if action == .pause || action == .cancel {
                let reason = action == .pause ? TransferFailure(code: "paused", message: "paused (transfer.pause)")
                    : TransferFailure(code: "canceled", message: "canceled (transfer.cancel)")
                running.withLock { $0[info.id] }?.interrupt(reason)
            }
            publish(info, action)
        }
        save()
        wakeUp.signal()
        return TransferListResult(transfers: changed, total: changed.count)
    }

    private func publish(_ info: TransferInfo, _ action: TransferQueue.Action) {
        guard let repo = eventRepo(info) else { return }
        switch action {
        case .pause: events.publish(TransferPaused(repo: repo, transfer: info))
        case .resume, .retry: events.publish(TransferResumed(repo: repo, transfer: info))
        case .cancel: events.publish(TransferCanceled(repo: repo, transfer: info))
        }
    }

    private func eventRepo(_ info: TransferInfo) -> EventRepo? {
        guard let uuid = queue.withLock({ $0[info.id]?.repoUUID }) else { return nil }
        return EventRepo(path: info.repo, uuid: uuid)
    }

    // MARK: Scheduling

    /// Runs the scheduler until the task is cancelled: starts what may start, ticks once a
    /// second for progress, stalls, idle connections and saving the queue.
    func run() async {
        load()
        var lastTick = 0.0
        while !Task.isCancelled {
            await startWhatMay()
            let now = RateLimiter.now()
            if now - lastTick >= 1 {
                lastTick = now
                tick()
            }
            let retryIn = queue.withLock { $0.nextRetryTime }.map { max(0.05, $0 - Self.now()) } ?? 1
            await wakeUp.wait(timeout: min(1, retryIn, max(0.05, 1 - (RateLimiter.now() - lastTick))))
        }
        stopAll()
    }

    private func startWhatMay() async {
        let limits = settings.limits(repos: gitConfigs.withLock { $0 })
        let socks = await dialer.socks()
        while let entry = queue.withLock({ q in q.startNext(now: Self.now(), limits: limits, busy: Set(running.withLock { $0.keys })) }) {
            launch(entry, socks: socks)
        }
    }

    private func launch(_ entry: TransferQueue.Entry, socks: (host: String, port: Int)) {
        let info = entry.info
        let repoEvent = EventRepo(path: info.repo, uuid: entry.repoUUID)
        events.publish(TransferStarted(repo: repoEvent, transfer: info))
        guard let peer = entry.peer else {
            finishAttempt(info.id, TransferFailure(code: "no_peer", message: "no linked peer to get \(info.file ?? info.key) from: link one (annex-cli remote add, or pair)"), repoEvent)
            return
        }
        let git = gitConfig(entry.repoUUID)
        let meter = TransferMeter(limiters: settings.limiters(git: git, remote: peer.name, peer: peer.uuid, direction: info.direction),
                                  stall: settings.policy(git: git, remote: peer.name, direction: info.direction).stall)
        let handle = RunningTransfer(id: info.id, meter: meter)
        running.withLock { $0[info.id] = handle }
        let prepared: (TransferWorker)? = {
            guard let repo = repos.registry.find(entry.repoUUID), let store = try? repos.objectStore(repo),
                  let key = try? AnnexKey(parsing: info.key),
                  let remote = linking.remotes(of: repo).first(where: { $0.uuid == peer.uuid }) else { return nil }
            return TransferWorker(store: store, dialer: dialer, socks: socks, pool: pool,
                                  remote: remote, peer: peer, key: key, file: info.file, direction: info.direction)
        }()
        guard let worker = prepared else {
            running.withLock { $0[info.id] = nil }
            finishAttempt(info.id, TransferFailure(code: "no_peer", message: "\(peer.name ?? peer.uuid) is no longer a tor-annex remote of \(info.repo)"), repoEvent)
            return
        }
        Thread {
            let failure = worker.run(handle)
            self.running.withLock { $0[info.id] = nil }
            self.finishAttempt(info.id, failure, repoEvent, moved: handle.meter.moved, from: handle.stage.withLock { $0.offset })
            self.wakeUp.signal()
        }.start()
    }

    private func finishAttempt(_ id: String, _ failure: TransferFailure?, _ repo: EventRepo, moved: Int64 = 0, from offset: Int64 = 0) {
        var limits = settings.limits(repos: [:])
        if let e = queue.withLock({ $0[id] }) {
            let p = settings.policy(git: gitConfig(e.repoUUID), remote: e.peer?.name, direction: e.info.direction)
            (limits.retries, limits.retryDelay) = (p.retries, p.retryDelay)
        }
        let info: TransferInfo? = queue.withLock { q in
            guard let state = q[id]?.info.state else { return nil }
            if let failure {
                // Paused or canceled while running (and maybe resumed since): what the user asked stands.
                if state == .paused || state == .canceled || Self.stopCodes.contains(failure.code) { return nil }
                return q.fail(id, failure, now: Self.now(), limits: limits)
            }
            // It succeeded, even if paused or canceled too late to stop it: it is done.
            q.update(id) { $0.bytes = $0.size ?? (offset + moved); $0.resumedFrom = offset }
            q.finish(id)
            return q[id]?.info
        }
        dirty.store(true, ordering: .relaxed)
        guard let info else { return }
        if failure == nil {
            events.publish(TransferFinished(repo: repo, transfer: info))
        } else {
            logger.info("transfer \(id) (\(info.direction.rawValue) \(info.file ?? info.key)): \(failure!.code): \(failure!.message)")
            events.publish(TransferFailed(repo: repo, transfer: info))
        }
    }

    /// Once a second: progress of the transfers moving bytes, stalls, idle connections, saving.
    private func tick() {
        var byRepo: [String: [TransferInfo]] = [:], repoUUIDs: [String: String] = [:], movedByRepo: [String: Int64] = [:]
        let handles = running.withLock { $0 }
        for (id, handle) in handles {
            let stage = handle.stage.withLock { $0 }
            let moved = handle.meter.moved
            let rate = handle.meter.sampleRate()
            handle.record.withLock { $0 }?.progress(bytes: stage.offset + moved)
            if !stage.verifying, handle.meter.stalled {
                handle.interrupt(TransferFailure(code: "stalled", message: Self.stallMessage(handle.meter.stall)))
            }
            guard let (info, uuid) = queue.withLock({ q -> (TransferInfo, String)? in
                // The attempt may have ended since `handles` was read (and another begun): what it left stands.
                guard let state = q[id]?.info.state, state == .active || state == .verifying,
                      running.withLock({ $0[id] }) === handle else { return nil }
                q.update(id) { i in
                    i.resumedFrom = stage.offset
                    i.bytes = stage.offset + moved
                    i.rate = rate
                    i.eta = (rate > 0 && i.size != nil) ? Double(max(0, i.size! - i.bytes)) / rate : nil
                    if stage.verifying { i.state = .verifying }
                }
                return q[id].map { ($0.info, $0.repoUUID) }
            }) else { continue }
            byRepo[uuid, default: []].append(info)
            repoUUIDs[uuid] = info.repo
            movedByRepo[uuid, default: 0] += moved
        }
        // A repository's snapshot goes out only when its bytes moved since the last one.
        let marks = progressMark.withLock { $0 }
        var newMarks: [String: Int64] = [:]
        for (uuid, infos) in byRepo {
            let total = movedByRepo[uuid] ?? 0
            newMarks[uuid] = total
            if total != marks[uuid] {
                events.publish(TransferProgress(repo: EventRepo(path: repoUUIDs[uuid]!, uuid: uuid), transfers: infos))
            }
        }
        progressMark.withLock { $0 = newMarks }
        pool.expire()
        if dirty.exchange(false, ordering: .relaxed) { save() }
    }

    private static func stallMessage(_ rule: TransferGitConfig.Stall) -> String {
        guard case .below(let bytes, let seconds) = rule else { return "stalled" }
        let what = bytes <= 1 ? "no data moved" : "fewer than \(bytes) bytes moved"
        return "\(what) in \(Int(seconds)) s (stall detection: settings stall_seconds/stall_bytes, or annex.stalldetection); the partial is kept and the transfer retries"
    }

    private func stopAll() {
        let handles = running.withLock { $0.values }
        for h in handles { h.interrupt(TransferFailure(code: "shutdown", message: "annexd is stopping; the transfer resumes when it starts again")) }
        pool.expire(all: true)
        save()
    }

    // MARK: Persistence

    private func save() {
        do {
            try saveQueue(ids: queue.withLock { $0.order }) { ids in queue.withLock { $0.unfinished(among: ids) } }
        } catch {
            logger.error("cannot save the transfer queue to \(error.file) (\(error.error)); the queue in memory is intact and is saved again at its next change")
        }
    }

    /// Writes the unfinished transfers among `ids` to the state directory, `entries` handing
    /// them over a few at a time: a queue of thousands never exists as one JSON tree, one text
    /// or one copy.
    private func saveQueue(ids: [String], entries: (ArraySlice<String>) -> [TransferQueue.Entry]) throws(StateDirectory.Unwritable) {
        do {
            try StateDirectory.writeAtomically(queuePath, mode: 0o600) { write in
                var first = true
                try write([UInt8(ascii: "[")])
                for start in stride(from: 0, to: ids.count, by: 256) {
                    var bytes: [UInt8] = []
                    for e in entries(ids[start..<min(start + 256, ids.count)]) {
                        if !first { bytes.append(UInt8(ascii: ",")) }
                        first = false
                        let entry: JSONValue = ["transfer": e.info.json, "repo_uuid": .string(e.repoUUID), "candidates": e.candidates.json]
                        bytes += entry.serializedBytes()
                    }
                    try write(bytes)
                }
                try write([UInt8(ascii: "]")])
            }
        } catch {
            throw StateDirectory.Unwritable(file: queuePath, error: "\(error)")
        }
    }

    /// Brings back what was unfinished, in order, minus what the location log already satisfies.
    private func load() {
        guard let bytes = FileManager.default.contents(atPath: queuePath),
              let items = try? JSONValue(parsing: Array(bytes)).arrayValue else { return }
        var restored = 0
        for item in items {
            guard let o = item.objectValue, let t = o["transfer"], let info = try? TransferInfo(json: t),
                  let repoUUID = o["repo_uuid"]?.stringValue,
                  let candidates = try? [TransferPeer](json: o["candidates"] ?? .array([])) else { continue }
            guard let repo = repos.registry.find(repoUUID), let annex = try? repos.openRepo(repo),
                  let key = try? AnnexKey(parsing: info.key) else { continue }
            if info.direction == .get && ObjectStore(repo: annex).isPresent(key) { continue }
            if gitConfigs.withLock({ $0[repoUUID] }) == nil { refreshGitConfig(repo) }
            queue.withLock { $0.restore(.init(info: info, repoUUID: repoUUID, candidates: candidates)) }
            if let restoredInfo = queue.withLock({ $0[info.id]?.info }) {
                events.publish(TransferQueued(repo: EventRepo(path: repo.path, uuid: repoUUID), transfer: restoredInfo))
            }
            restored += 1
        }
        if restored > 0 { logger.info("\(restored) unfinished transfers brought back from \(queuePath)") }
    }
}

/// Wakes the scheduler early (a transfer queued or finished).
final class WakeSignal: Sendable {
    private let pending = Mutex<(flag: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func signal() {
        let w = pending.withLock { p -> CheckedContinuation<Void, Never>? in
            if let w = p.waiter { p.waiter = nil; return w }
            p.flag = true
            return nil
        }
        w?.resume()
    }

    func wait(timeout: Double) async {
        let timer = Task { [weak self] in
            // Cancelled (the wait ended early): no signal, or the next wait would return at
            // once and the scheduler would spin.
            guard (try? await Task.sleep(nanoseconds: UInt64(max(0.01, timeout) * 1e9))) != nil else { return }
            self?.signal()
        }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = pending.withLock { p -> Bool in
                if p.flag { p.flag = false; return true }
                p.waiter = c
                return false
            }
            if resumeNow { c.resume() }
        }
        timer.cancel()
    }
}
