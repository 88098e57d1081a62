#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import NIOCore
import NIOPosix
import Shared
import Synchronization

/// The long-running daemon: registry, P2P listeners, event log and RPC server.
public final class Daemon: @unchecked Sendable {
    public struct Config: Sendable {
        public var stateDir: String
        public var socketPath: String
        public var tor: String
        public var socksHost: String
        public var socksPort: Int
        /// `--socks` was given: peers are dialled through it whatever tor is in use.
        public var socksExplicit = false
        /// Limits of every repository's P2P listener (AUTH delays, connection caps).
        public var listenerLimits = P2PListener.Limits()
        /// The tor manager's settings when `tor` is not `none`.
        public var torSettings: TorManager.Settings?
        /// Where repositories set up by `git annex enable-tor` are found.
        public var systemTorrc = "/etc/tor/torrc"
        /// How annex-tor-helper is run for `tor.enableSystem`.
        public var torHelper = TorHelperRunner()
        /// Mailbox, transit relay and SOCKS for pairing (Pairing.swift).
        public var wormhole = Wormhole.Configuration(appID: Wormhole.gitAnnexAppID)
        public init(stateDir: String, socketPath: String, tor: String = "none", socksHost: String = "127.0.0.1", socksPort: Int = 9050) {
            self.stateDir = stateDir
            self.socketPath = socketPath
            self.tor = tor
            self.socksHost = socksHost
            self.socksPort = socksPort
        }

        public static func defaultSocketPath() -> String {
            let env = ProcessInfo.processInfo.environment
            if let runtime = env["XDG_RUNTIME_DIR"], runtime.hasPrefix("/") { return runtime + "/annexd/rpc.sock" }
            return "/tmp/annexd-\(getuid())/rpc.sock"
        }
    }

    public let config: Config
    public let state: StateDirectory
    public let registry: Registry
    public let events: EventLog
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    private var rpc: RPCServer?
    /// Onion services; nil with `--tor none`.
    public private(set) var tor: TorManager?
    private let listeners = Mutex<[String: P2PListener]>([:])
    /// Repositories served on their `git annex enable-tor` socket and address.
    private let adopted = Mutex<[String: EnableTorService]>([:])
    let pairings = PairingSessions()
    private let started = Date()
    /// Asks the process to shut down (set by the service runner).
    public var requestShutdown: @Sendable () -> Void = {}

    public init(config: Config, logger: Logger) throws {
        self.config = config
        self.logger = logger
        state = try StateDirectory(path: config.stateDir)
        registry = try Registry(state: state)
        events = EventLog()
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        if let settings = config.torSettings, settings.mode != .none {
            let events = self.events
            tor = TorManager(settings: settings, group: group, logger: logger) { type, fields in
                events.publish(type, fieldsJSON: JSONValue.object(fields).serialized())
            }
        }
    }

    /// Starts serving every registered repository and the RPC socket.
    public func start() throws {
        // Opening a repository runs git; with many repositories, on every core at once.
        let repos = registry.all
        DispatchQueue.concurrentPerform(iterations: repos.count) { i in
            let repo = repos[i]
            do { try startListener(repo) } catch {
                logger.error("cannot serve \(repo.path): \(error)")
                publish("repo.failed", ["repo": .string(repo.path), "uuid": .string(repo.uuid), "error": .string("\(error)")])
            }
        }
        let server = RPCServer(socketPath: config.socketPath, group: group, dispatcher: makeDispatcher()) { [weak self] conn in
            if let id = conn.setSubscription(nil) { self?.events.unsubscribe(id) }
        }
        server.answerInline(DaemonStatusMethod.self) { [self] _, _ in status() }
        try server.start()
        rpc = server
        logger.info("annexd ready: \(registry.all.count) repositories, RPC on \(config.socketPath)")
    }

    /// Starts the tor manager with an onion for every repository being served.
    public func startTor() async {
        guard let tor else { return }
        for repo in registry.all where listeners.withLock({ $0[repo.uuid] != nil }) {
            if let s = try? onionService(repo) { await tor.add(s) }
        }

        await tor.start()
    }

    /// Stops accepting, lets transfers end (their partials stay for resume), closes the RPC socket.
    public func stop() async {
        publish("daemon.stopping", [:])
        rpc?.stop()
        await tor?.stop()
        let all = listeners.withLock { l in defer { l = [:] }; return Array(l.values) }
        for l in all { l.stop(); l.store.log.close() }
        try? await group.shutdownGracefully()
    }

    /// The onion annexd publishes for `repo`.
    func onionService(_ repo: Registry.Repo) throws -> TorManager.Service? {
        // An adopted repository is published by system tor as well; annexd's own onion
        // (which peers invited earlier may use) then leads to the adopted socket.
        let socket = adopted.withLock({ $0[repo.uuid] })?.socket ?? socketPath(for: repo.uuid)
        return TorManager.Service(uuid: repo.uuid, repo: repo.path, key: try registry.onionKey(for: repo.uuid),
                           virtualPort: repo.port, socketPath: socket)
    }

    /// Where peers are dialled: `--socks` if given, else the SOCKS port of the tor in use, else 127.0.0.1:9050.
    func socksAddress() async -> (host: String, port: Int) {
        if !config.socksExplicit, let tor, let s = await tor.socksAddress { return s }
        return (config.socksHost, config.socksPort)
    }

    // MARK: Events

    @discardableResult
    func publish(_ type: String, _ fields: JSONObject) -> EventLog.Event {
        events.publish(type, fieldsJSON: JSONValue.object(fields).serialized())
    }

    static func notification(_ e: EventLog.Event) -> [UInt8] {
        var params: JSONObject = ["id": .int(Int64(e.id)), "boot": .string(e.boot), "type": .string(e.type), "time": .double(e.time)]
        if let fields = try? JSONValue(parsing: e.fieldsJSON), case .object(let o) = fields {
            // The envelope (id, boot, type, time) wins: an event field of the same name must not
            // replace the id a client resumes from.
            for (k, v) in o where params[k] == nil { params[k] = v }
        }
        return RPCNotification.event(params).json.serializedBytes()
    }

    // MARK: Repositories

    func socketPath(for uuid: String) -> String {
        config.stateDir + "/p2p/" + String(uuid.prefix(8)) + ".sock"
    }

    func info(_ repo: Registry.Repo) throws -> RepoInfo {
        if let a = adopted.withLock({ $0[repo.uuid] }) {
            return RepoInfo(uuid: repo.uuid, path: repo.path, bare: repo.bare, onion: a.onion, port: a.port,
                            socket: a.socket, peers: repo.peers.count)
        }
        let key = try registry.onionKey(for: repo.uuid)
        return RepoInfo(uuid: repo.uuid, path: repo.path, bare: repo.bare, onion: key.onionAddress, port: repo.port,
                        socket: socketPath(for: repo.uuid), peers: repo.peers.count)
    }

    /// The repository as its listener opened it (no git run), or opened now.
    func openRepo(_ repo: Registry.Repo) throws -> AnnexRepo {
        if let served = listeners.withLock({ $0[repo.uuid]?.store.repo }) { return served }
        return try AnnexRepo(path: repo.path)
    }

    private func startListener(_ repo: Registry.Repo) throws {
        let annex = try AnnexRepo(path: repo.path)
        guard annex.uuid == repo.uuid else {
            throw AnnexRepo.OpenError(description: "\(repo.path) now has UUID \(annex.uuid), not the registered \(repo.uuid)")
        }
        let uuid = repo.uuid
        let registry = self.registry
        let adoption = enableTorService(annex)
        let listener = P2PListener(
            socketPath: adoption?.socket ?? socketPath(for: uuid), store: ObjectStore(repo: annex),
            authenticator: RepoAuthenticator(repo: annex) { token in registry.access(of: token, in: uuid) },
            limits: config.listenerLimits,
            events: ListenerEvents(daemon: self, repo: repo.path, uuid: uuid),
            report: { [logger] in logger.info("\(repo.path): \($0)") })
        try listener.start()
        listeners.withLock { $0[uuid] = listener }
        if let adoption {
            adopted.withLock { $0[uuid] = adoption }
            logger.info("\(repo.path): serving its git annex enable-tor onion \(adoption.onion) on \(adoption.socket)")
        }
    }

    /// `annex`'s enable-tor service in the system torrc, if it has one annexd can serve:
    /// its socket directory exists and nothing (git annex remotedaemon) listens there yet.
    private func enableTorService(_ annex: AnnexRepo) -> EnableTorService? {
        guard let torrc = try? String(contentsOfFile: config.systemTorrc, encoding: .utf8),
              let addrs = try? String(contentsOfFile: annex.gitDir + "/annex/creds/p2paddrs", encoding: .utf8),
              let service = EnableTorService.find(uuid: annex.uuid, uid: getuid(), torrc: torrc, p2paddrs: addrs) else { return nil }
        guard Posix.isDirectory(Posix.dirname(service.socket)) else {
            logger.warning("\(annex.path): git annex enable-tor set up \(service.onion), but \(Posix.dirname(service.socket)) is missing; serving annexd's own onion instead")
            return nil
        }
        if let fd = try? UnixSocket.connect(service.socket) {
            close(fd)
            logger.warning("\(annex.path): \(service.socket) is already served (git annex remotedaemon?); stop it to let annexd serve \(service.onion). Serving annexd's own onion meanwhile")
            return nil
        }
        return service
    }

    /// Serves `repo` again (after its enable-tor setup changed).
    func restartListener(_ repo: Registry.Repo) throws {
        stopListener(repo.uuid)
        try startListener(repo)
    }

    private func stopListener(_ uuid: String) {
        adopted.withLock { _ = $0.removeValue(forKey: uuid) }
        if let l = listeners.withLock({ $0.removeValue(forKey: uuid) }) { l.stop(); l.store.log.close() }
    }

    var connectionCount: Int { listeners.withLock { $0.values.reduce(0) { $0 + $1.connectionCount } } }

    // MARK: RPC methods

    func status() -> DaemonStatus {
        DaemonStatus(version: AnnexdAPI.version, pid: Int(getpid()), boot: events.boot,
                     uptime: Date().timeIntervalSince(started), stateDir: config.stateDir, socket: config.socketPath,
                     tor: config.tor, repos: registry.all.count, connections: connectionCount,
                     latestEvent: Int(events.latestID))
    }

    private func makeDispatcher() -> RPCDispatcher<RPCCaller> {
        var d = RPCDispatcher<RPCCaller>(version: AnnexdAPI.version)
        d.register(DaemonStatusMethod.self) { [self] _, _ in status() }
        d.register(DaemonShutdown.self) { [self] _, caller in
            caller.connection.afterReply { [self] in requestShutdown() }
            return RPCEmptyResult()
        }
        d.register(RepoAdd.self) { [self] params, _ in
            let (info, repo) = try addRepo(params.path)
            if let repo, let tor, let service = try onionService(repo) { await tor.add(service) }
            return info
        }
        d.register(RepoList.self) { [self] _, _ in RepoList.Result(repos: try registry.all.map(info)) }
        d.register(RepoInfoMethod.self) { [self] params, _ in try info(try lookup(params.repo)) }
        d.register(RepoRemove.self) { [self] params, _ in
            let repo = try lookup(params.repo)
            let result = try info(repo)
            await tor?.remove(uuid: repo.uuid)
            stopListener(repo.uuid)
            try registry.remove(repo.uuid)
            publish("repo.removed", ["uuid": .string(repo.uuid), "path": .string(repo.path)])
            return result
        }
        d.register(PeerInvite.self) { [self] params, _ in try invite(params) }
        d.register(PeerList.self) { [self] params, _ in
            PeerList.Result(peers: try lookup(params.repo).peers.map(Self.peerInfo))
        }
        d.register(PeerRevoke.self) { [self] params, _ in try revoke(params) }
        d.register(PeerSetAccess.self) { [self] params, _ in
            let repo = try lookup(params.repo)
            _ = try peer(params.name, in: repo)
            try registry.updatePeer(named: params.name, in: repo.uuid) { $0?.access = PeerAccess(rawValue: params.access) ?? .readOnly }
            let updated = try peer(params.name, in: try lookup(params.repo))
            publish("peer.accessChanged", ["repo": .string(repo.path), "peer": .string(params.name), "access": .string(params.access)])
            return Self.peerInfo(updated)
        }
        d.register(EventsSubscribe.self) { [self] params, caller in try subscribe(params, caller) }
        d.register(PeerLink.self) { [self] params, _ in try await link(params) }
        d.register(RemoteListMethod.self) { [self] params, _ in RemoteListMethod.Result(remotes: try remotes(of: try lookup(params.repo))) }
        d.register(RemoteRemove.self) { [self] params, _ in try unlinkRemote(params) }
        d.register(TorEnableSystem.self) { [self] params, _ in try await enableSystemTor(params) }
        d.register(TorStatusMethod.self) { [self] _, _ in
            await tor?.status() ?? TorStatus(mode: "none", using: "none", control: nil, socks: nil, bootstrapProgress: 0,
                                             bootstrapSummary: "annexd runs with --tor none", warning: nil, error: nil, onions: [])
        }
        registerPairing(&d)
        return d
    }

    func lookup(_ selector: String) throws -> Registry.Repo {
        do { return try registry.require(selector) } catch let e as Registry.RegistryError { throw e.rpc }
    }

    /// Registers and serves a repository; the registry entry when it is new.
    private func addRepo(_ path: String) throws -> (RepoInfo, Registry.Repo?) {
        let annex: AnnexRepo
        do { annex = try AnnexRepo(path: path) } catch {
            throw RPCError.invalidParams(reason: "not_an_annex_repo", "\(error)", details: ["path": .string(path)])
        }
        let (repo, _, isNew) = try registry.add(annex)
        let result = try info(repo)
        if isNew {
            do { try startListener(repo) } catch {
                try? registry.remove(repo.uuid)
                throw RPCError(.unavailable, message: "cannot serve \(annex.path): \(error)", reason: "listener_failed")
            }
            publish("repo.added", ["repo": result.json])
        }
        return (result, isNew ? repo : nil)
    }

    static func peerInfo(_ p: Registry.Peer) -> PeerInfo {
        PeerInfo(name: p.name, access: p.access.rawValue, created: p.created)
    }

    private func peer(_ name: String, in repo: Registry.Repo) throws -> Registry.Peer {
        guard let p = repo.peers.first(where: { $0.name == name }) else {
            throw RPCError(.notFound, message: "\(repo.path) has no peer named \(name); `annex-cli peer list` shows them",
                           reason: "peer_not_found", details: ["peer": .string(name)])
        }
        return p
    }

    private func invite(_ params: PeerInvite.Params) throws -> PeerInvite.Result {
        let repo = try lookup(params.repo)
        let name = params.name ?? (1...).lazy.map { "peer-\($0)" }.first { n in !repo.peers.contains { $0.name == n } }!
        guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw RPCError.invalidParams(reason: "invalid_peer_name", "params.name: use letters, digits, '-', '_' or '.', at most 64")
        }
        guard !repo.peers.contains(where: { $0.name == name }) else {
            throw RPCError(.alreadyExists, message: "\(repo.path) already has a peer named \(name)", reason: "peer_exists")
        }
        let served = try info(repo)
        let address = "tor-annex::\(served.onion):\(served.port)"
        let token = AuthToken.generate()
        try editAuthFile(repo) { $0.add(token, address: address) }
        let peer = Registry.Peer(name: name, tokenSHA256: Registry.hash(token),
                                 access: PeerAccess(rawValue: params.access) ?? .readWrite, created: Date().timeIntervalSince1970)
        try registry.addPeer(peer, to: repo.uuid)
        try recordOwnAddress(repo, address: address)
        publish("peer.invited", ["repo": .string(repo.path), "peer": .string(name), "access": .string(params.access)])
        return PeerInvite.Result(address: "\(address):\(token.value)", peer: Self.peerInfo(peer))
    }

    private func revoke(_ params: PeerSelector) throws -> PeerInfo {
        let repo = try lookup(params.repo)
        let p = try peer(params.name, in: repo)
        try editAuthFile(repo) { file in
            for t in file.tokens where Registry.hash(t) == p.tokenSHA256 { file.remove(t) }
        }
        try registry.updatePeer(named: params.name, in: repo.uuid) { $0 = nil }
        publish("peer.revoked", ["repo": .string(repo.path), "peer": .string(params.name)])
        return Self.peerInfo(p)
    }

    /// Edits the repository's creds/p2pauth atomically (0600), as git-annex keeps it.
    func editAuthFile(_ repo: Registry.Repo, _ change: (inout P2PAuthFile) -> Void) throws {
        let annex = try openRepo(repo)
        let path = RepoAuthenticator.authFilePath(annex)
        try Posix.makeDirectories(Posix.dirname(path), mode: 0o700)
        var file = P2PAuthFile(text: (try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
        change(&file)
        try StateDirectory.writeAtomically(path, Array(file.text.utf8), mode: 0o600)
    }

    /// git-annex lists a repository's own addresses in creds/p2paddrs (`git annex p2p --gen-addresses` reads it).
    func recordOwnAddress(_ repo: Registry.Repo, address: String) throws {
        let annex = try openRepo(repo)
        let path = annex.gitDir + "/annex/creds/p2paddrs"
        try Posix.makeDirectories(Posix.dirname(path), mode: 0o700)
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        guard !text.split(separator: "\n").contains(where: { $0 == address }) else { return }
        try StateDirectory.writeAtomically(path, Array((text + address + "\n").utf8), mode: 0o600)
    }

    private func subscribe(_ params: EventsSubscribe.Params, _ caller: RPCCaller) throws -> EventsSubscribe.Result {
        let conn = caller.connection
        let latest = events.latestID
        if let since = params.since, UInt64(since) > latest {
            throw RPCError(.invalidState, message: "event \(since) has not happened in this boot (latest is \(latest)); resubscribe without since",
                           reason: "unknown_event_id", details: ["latest": .int(Int64(latest)), "boot": .string(events.boot)])
        }
        let types = params.types.map(Set.init)
        let snapshot = params.since == nil ? try snapshotNotification(latest: latest) : nil
        let from = params.since.map(UInt64.init) ?? latest
        conn.afterReply { [self] in
            if let snapshot { _ = conn.notify(snapshot) }
            do {
                let id = try events.subscribe(since: from, types: types) { delivery in
                    switch delivery {
                    case .event(let e): return conn.notify(Self.notification(e))
                    case .overflow(let resume):
                        let lag = RPCNotification(method: "event.overflow", params: .object([
                            "resume_from": .int(Int64(resume)), "boot": .string(self.events.boot),
                            "message": .string("this client fell behind; resubscribe with since to continue")]))
                        conn.write(lag.json.serializedBytes())
                        return false
                    }
                }
                if let old = conn.setSubscription(id) { events.unsubscribe(old) }
            } catch {
                let gone = RPCNotification(method: "event.overflow", params: .object([
                    "resume_from": .int(Int64(from)), "boot": .string(events.boot),
                    "message": .string("events after \(from) are no longer kept (\(error)); resubscribe without since for a snapshot")]))
                conn.write(gone.json.serializedBytes())
            }
        }
        return EventsSubscribe.Result(boot: events.boot, latest: Int(latest))
    }

    private func snapshotNotification(latest: UInt64) throws -> [UInt8] {
        let repos = try registry.all.map { try info($0).json }
        return RPCNotification.event(["id": .int(Int64(latest)), "boot": .string(events.boot), "type": "snapshot",
                                      "time": .double(Date().timeIntervalSince1970), "repos": .array(repos),
                                      "connections": .int(Int64(connectionCount))]).json.serializedBytes()
    }
}

/// Turns P2P session happenings into daemon events.
final class ListenerEvents: P2PServerEvents, @unchecked Sendable {
    weak var daemon: Daemon?
    let repo: String
    let uuid: String
    init(daemon: Daemon, repo: String, uuid: String) {
        self.daemon = daemon
        self.repo = repo
        self.uuid = uuid
    }
    func authenticated(clientUUID: String, ok: Bool) {
        daemon?.publish(ok ? "peer.connected" : "peer.authFailed", ["repo": .string(repo), "client_uuid": .string(clientUUID)])
    }
    func received(_ key: AnnexKey) { daemon?.publish("content.received", ["repo": .string(repo), "key": .string(key.serialized)]) }
    func sent(_ key: AnnexKey) { daemon?.publish("content.sent", ["repo": .string(repo), "key": .string(key.serialized)]) }
    func removed(_ key: AnnexKey) { daemon?.publish("content.removed", ["repo": .string(repo), "key": .string(key.serialized)]) }
}
