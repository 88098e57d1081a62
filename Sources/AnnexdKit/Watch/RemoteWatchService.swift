import Foundation
import Logging
import Shared
import Synchronization

/// Watches the tor-annex remotes of every repository with watching on (repo.set {watch}):
/// one RemoteWatcher per remote, except remotes with `annex-ignore=true` or
/// `annex-sync=false`. What is watched follows the registry, the remotes and the settings:
/// it is worked out again when a repository or remote is added or removed, when repo.set
/// changes a setting, and every `rescan` seconds (git config edited by hand).
/// A debounced change calls `onChange(repo, peer)`, which the daemon wires to its sync.
public final class RemoteWatchService: Sendable {
    public struct Timing: Sendable {
        public var retryInitial: Double = 1
        public var retryCap: Double = 60
        public var jitter: Double = 0.2
        public var quiet: Double = 0.5
        public var maxDelay: Double = 3
        public var rescan: Double = 30
        public init() {}
    }

    /// One remote to watch: a change of address or name is another watcher.
    struct Target: Hashable, Sendable {
        var repo: String
        var remote: String
        var address: String
        var uuid: String?
    }

    let repos: RepositoryService
    let linking: LinkingService
    let dialer: PeerDialer
    let events: EventLog
    let settings: RepoSettingsStore
    let memory: ChangeMemoryStore
    let timing: Timing
    let logger: Logger
    private let hook = Mutex<@Sendable (Registry.Repo, WatchedPeer) -> Void>({ _, _ in })
    private let watchers = Mutex<[Target: RemoteWatcher]>([:])
    private let wake = WakeSignal()
    private let reconciling = Mutex<Void>(())

    init(repos: RepositoryService, linking: LinkingService, dialer: PeerDialer, events: EventLog,
         stateDir: String, timing: Timing, logger: Logger) {
        self.repos = repos
        self.linking = linking
        self.dialer = dialer
        self.events = events
        settings = RepoSettingsStore(path: stateDir + "/repo-settings.json")
        memory = ChangeMemoryStore(path: stateDir + "/watch-memory.json")
        self.timing = timing
        self.logger = logger
    }

    /// Called (on a watcher's thread) when a watched remote's changes settle.
    public var onChange: @Sendable (Registry.Repo, WatchedPeer) -> Void {
        get { hook.withLock { $0 } }
        set { hook.withLock { $0 = newValue } }
    }

    // MARK: Lifetime

    /// Watches until cancelled, then stops every watcher.
    func run() async {
        let types: Set<String> = [RepoAdded.type, RepoRemoved.type, PeerLinked.type, PeerUnlinked.type]
        let subscription = try? events.subscribe(since: events.latestID, types: types) { [weak self] delivery in
            if case .event(let e) = delivery, e.type == RepoRemoved.type, let uuid = e.params["uuid"]?.stringValue {
                self?.settings.forget(uuid)
                self?.memory.forget(repo: uuid)
            }
            self?.wake.signal()
            return true
        }
        while !Task.isCancelled {
            _ = try? await Blocking.run { [self] in reconcile() }
            await withTaskCancellationHandler { await wake.wait(timeout: timing.rescan) } onCancel: { wake.signal() }
        }
        if let subscription { events.unsubscribe(subscription) }
        _ = try? await Blocking.run { [self] in stopAll() }
    }

    /// Stops every watcher (shutdown).
    func stopAll() {
        reconciling.withLock { _ in
            let all = watchers.withLock { w in defer { w = [:] }; return Array(w.values) }
            stopConcurrently(all)
        }
    }

    /// Works out what to watch again soon (repo.set, a remote added or removed).
    func refresh() { wake.signal() }

    /// The remotes being watched, and whether each is connected (for tests and status).
    var watching: [(repo: String, remote: String, connected: Bool)] {
        watchers.withLock { $0.map { ($0.key.repo, $0.key.remote, $0.value.isConnected) } }
    }

    // MARK: Settings

    /// repo.info's `settings`: the effective values and each remote's watch state.
    func settings(of repo: Registry.Repo) -> RepoSettings {
        let git = WatchGitConfig.read(repo.path)
        var s = RepoSettingsStore.effective(settings.overrides(repo.uuid), git: git)
        let connected = Dictionary(watching.filter { $0.repo == repo.uuid }.map { ($0.remote, $0.connected) },
                                   uniquingKeysWith: { a, b in a || b })
        s.remotes = linking.remotes(of: repo).map { r in
            let skipped = git.skipReason(remote: r.name) ?? (s.watch ? nil : "watch off")
            return RemoteWatchInfo(name: r.name, uuid: r.uuid, watched: skipped == nil, skipped: skipped,
                                   connected: skipped == nil ? connected[r.name] ?? false : nil)
        }
        return s
    }

    /// repo.set.
    func set(_ repo: Registry.Repo, watch: RepoSettingChange, syncContent: RepoSettingChange) throws -> RepoSettings {
        _ = try settings.update(repo.uuid, watch: watch, syncContent: syncContent)
        refresh()
        return settings(of: repo)
    }

    // MARK: Reconciling

    /// Starts the watchers that should run and stops those that should not.
    func reconcile() {
        reconciling.withLock { _ in
            var wanted: [Target: Registry.Repo] = [:]
            for repo in repos.registry.all {
                for t in targets(repo) { wanted[t] = repo }
            }
            let (gone, current) = watchers.withLock { w -> ([RemoteWatcher], Set<Target>) in
                let gone = w.filter { wanted[$0.key] == nil }
                for key in gone.keys { w[key] = nil }
                return (Array(gone.values), Set(w.keys))
            }
            stopConcurrently(gone)
            for (target, repo) in wanted where !current.contains(target) {
                let watcher = RemoteWatcher(context(target, repo))
                watchers.withLock { $0[target] = watcher }
                watcher.start()
            }
        }
    }

    /// The remotes of `repo` to watch (one git run when watching is off).
    private func targets(_ repo: Registry.Repo) -> [Target] {
        let git = WatchGitConfig.read(repo.path)
        guard RepoSettingsStore.effective(settings.overrides(repo.uuid), git: git).watch else { return [] }
        return linking.remotes(of: repo).filter { git.skipReason(remote: $0.name) == nil }.map {
            Target(repo: repo.uuid, remote: $0.name, address: $0.address, uuid: $0.uuid)
        }
    }

    private func context(_ target: Target, _ repo: Registry.Repo) -> RemoteWatcher.Context {
        let peer = WatchedPeer(uuid: target.uuid, name: target.remote)
        let remote = RemoteInfo(name: target.remote, address: target.address, uuid: target.uuid)
        let (repos, dialer, logger) = (self.repos, self.dialer, self.logger)
        return RemoteWatcher.Context(
            repo: RepositoryService.eventRepo(repo), peer: peer,
            dial: { () throws(PeerDialer.DialError) -> P2PClient in
                let annex: AnnexRepo
                do { annex = try repos.openRepo(repo) } catch {
                    throw PeerDialer.DialError(code: "repo_unavailable", description: "cannot open \(repo.path): \(error)")
                }
                return try dialer.connect(remote, of: annex, store: nil, socksAddress: Self.socksAddress(dialer))
            },
            events: events, memory: memory,
            memoryKey: ChangeMemoryStore.key(repo: repo.uuid, remote: target.uuid ?? target.address),
            backoff: ReconnectBackoff(initial: timing.retryInitial, cap: timing.retryCap, jitter: timing.jitter),
            // Of two repositories watching each other, the one with the greater UUID lets the other pull first.
            debouncer: ChangeDebouncer(quiet: timing.quiet, maxDelay: timing.maxDelay, defers: target.uuid.map { repo.uuid > $0 } ?? false),
            hasLocally: { Self.branchesHold($0, repo: repo.path) },
            onTrigger: { [weak self] in self?.onChange(repo, peer) },
            log: { logger.info("\(repo.path): watch: \($0)") })
    }

    /// Whether every item is a commit SHA reachable from the repository's branches
    /// (`git rev-list <shas> --not --branches` lists nothing). A ref name, a commit not here, or
    /// git failing: no (the change is news, as before).
    static func branchesHold(_ items: [String], repo: String) -> Bool {
        guard !items.isEmpty, items.allSatisfy(ChangeMemory.isSHA) else { return false }
        guard let r = try? Command.run(["git", "rev-list", "-n", "1"] + items + ["--not", "--branches"], cwd: repo, timeout: 10) else {
            return false
        }
        return r.status == 0 && r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
    }

    private func stopConcurrently(_ all: [RemoteWatcher]) {
        DispatchQueue.concurrentPerform(iterations: all.count) { all[$0].stop() }
    }

    /// Where peers are dialled now (the tor in use may have changed its SOCKS port).
    private static func socksAddress(_ dialer: PeerDialer) -> (host: String, port: Int) {
        let box = Mutex<(host: String, port: Int)?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let a = await dialer.socks()
            box.withLock { $0 = a }
            done.signal()
        }
        done.wait()
        return box.withLock { $0! }
    }
}
