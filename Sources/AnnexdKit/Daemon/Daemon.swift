#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import NIOCore
import NIOPosix
import Shared
import Synchronization

/// The daemon: its services, wired together. Each service has one job (RepositoryService,
/// PeerService, LinkingService, PairingService, TorEnableService, the tor manager); the RPC
/// layer (RPCServer/DaemonAPI.swift) is a thin table over them; `lifecycle` gives the
/// long-running parts to swift-service-lifecycle in the order they start.
public final class Daemon: Sendable {
    public let config: Config
    public let state: StateDirectory
    public let events: EventLog
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    /// The RPC server's own event loops, one per CPU (at most 4): clients are answered on all
    /// CPUs at once, and a burst of RPC never delays the tor control connection or the peers.
    let rpcGroup = MultiThreadedEventLoopGroup(numberOfThreads: min(max(NIOCore.System.coreCount, 1), 4))
    private let pid = Int(getpid())
    /// Onion services; nil with `--tor none`.
    public let tor: TorManager?
    public let repos: RepositoryService
    public let peers: PeerService
    public let linking: LinkingService
    /// Reaches tor-annex remotes (linking, transfers, drops).
    public let dialer: PeerDialer
    public let pairing: PairingService
    public let torEnable: TorEnableService
    public let transfers: TransferService
    /// content.drop: drops with git-annex's numcopies/mincopies safety.
    public let drops: DropService
    /// sync.run: git-level sync with tor-annex remotes.
    public let sync: SyncService
    /// sync.plan, and the content part of a sync: what to get, put and drop, and doing it.
    public let contentSync: ContentSyncService
    /// Keeps a NOTIFYCHANGE connection to each tor-annex remote of repositories with watching on.
    public let watch: RemoteWatchService
    private let started = Date()
    private let shutdownRequest = Mutex<@Sendable () -> Void>({})

    public init(config: Config, logger: Logger) throws {
        self.config = config
        self.logger = logger
        state = try StateDirectory(path: config.stateDir)
        let events = EventLog()
        self.events = events
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.group = group
        let tor = config.torSettings.flatMap { $0.mode == .none ? nil : TorManager(settings: $0, group: group, logger: logger, events: events) }
        self.tor = tor
        let creds = CredsStore()
        repos = RepositoryService(
            registry: try Registry(state: state),
            settings: .init(stateDir: config.stateDir, systemTorrc: config.systemTorrc, listenerLimits: config.listenerLimits),
            events: events, tor: tor, logger: logger)
        peers = PeerService(repos: repos, creds: creds, events: events)
        // Peers are dialled through --socks if given, else the SOCKS port of the tor in use (or last
        // in use, while it starts again), else 127.0.0.1:9050.
        let explicit = config.socksExplicit, fallback = (host: config.socksHost, port: config.socksPort)
        dialer = PeerDialer(group: group) {
            if !explicit, let tor, let s = await tor.dialAddress { return s }
            return fallback
        }
        linking = LinkingService(repos: repos, creds: creds, events: events, dialer: dialer)
        pairing = PairingService(repos: repos, peers: peers, linking: linking, events: events, wormhole: config.wormhole, tor: tor)
        torEnable = TorEnableService(repos: repos, creds: creds, events: events, runner: config.torHelper)
        transfers = TransferService(repos: repos, linking: linking, dialer: dialer, events: events, stateDir: config.stateDir, logger: logger,
                                    maxUnfinished: config.maxQueuedTransfers)
        drops = DropService(repos: repos, linking: linking, dialer: dialer)
        contentSync = ContentSyncService(repos: repos, linking: linking, transfers: transfers, drops: drops)
        sync = SyncService(repos: repos, linking: linking, dialer: dialer, events: events, executable: config.executable,
                           content: contentSync)
        watch = RemoteWatchService(repos: repos, linking: linking, dialer: dialer, events: events,
                                   stateDir: config.stateDir, timing: config.watchTiming, logger: logger)
        // A settled change on a watched remote: pull from it (with content when the repository
        // syncs content). The watcher's trigger thread waits for the sync, so changes made
        // meanwhile gather into the next one.
        watch.onChange = { [sync, watch] repo, peer in
            let params = SyncRun.Params(repo: repo.path, peers: [peer.name], content: watch.settings(of: repo).syncContent ? true : nil,
                                        direction: .pull)
            let done = DispatchSemaphore(value: 0)
            Task {
                defer { done.signal() }
                do { _ = try await sync.run(params) } catch { logger.warning("\(repo.path): sync after a change on \(peer.name) failed: \(error)") }
            }
            done.wait()
        }
    }

    /// Asks the process to shut down (`daemon.shutdown`); set by whoever runs the lifecycle.
    public var requestShutdown: @Sendable () -> Void {
        get { shutdownRequest.withLock { $0 } }
        set { shutdownRequest.withLock { $0 = newValue } }
    }

    func status() -> DaemonStatus {
        DaemonStatus(version: AnnexdAPI.version, pid: pid, boot: events.boot,
                     uptime: Date().timeIntervalSince(started), stateDir: config.stateDir, socket: config.socketPath,
                     tor: config.tor, repos: repos.registry.all.count, connections: repos.connectionCount,
                     latestEvent: Int(events.latestID))
    }

    func torStatus() async -> TorStatus {
        await tor?.status() ?? TorStatus(mode: "none", using: "none", control: nil, socks: nil, bootstrapProgress: 0,
                                         bootstrapSummary: "annexd runs with --tor none", warning: nil, error: nil, onions: [])
    }

    /// After the lifecycle ended: the event loops the services used.
    public func shutdownEventLoops() async {
        try? await group.shutdownGracefully()
        try? await rpcGroup.shutdownGracefully()
    }
}
