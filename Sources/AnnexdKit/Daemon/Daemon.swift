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
        /// Limits of every repository's P2P listener (AUTH delays, connection caps).
        public var listenerLimits = P2PListener.Limits()
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
    private let listeners = Mutex<[String: P2PListener]>([:])
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
    }

    /// Starts serving every registered repository and the RPC socket.
    public func start() throws {
        for repo in registry.all {
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

    /// Stops accepting, lets transfers end (their partials stay for resume), closes the RPC socket.
    public func stop() {
        publish("daemon.stopping", [:])
        rpc?.stop()
        let all = listeners.withLock { l in defer { l = [:] }; return Array(l.values) }
        for l in all { l.stop(); l.store.log.close() }
        try? group.syncShutdownGracefully()
    }

    // MARK: Events

    @discardableResult
    func publish(_ type: String, _ fields: JSONObject) -> EventLog.Event {
        events.publish(type, fieldsJSON: JSONValue.object(fields).serialized())
    }

    static func notification(_ e: EventLog.Event) -> [UInt8] {
        var params: JSONObject = ["id": .int(Int64(e.id)), "boot": .string(e.boot), "type": .string(e.type), "time": .double(e.time)]
        if let fields = try? JSONValue(parsing: e.fieldsJSON), case .object(let o) = fields {
            for (k, v) in o { params[k] = v }
        }
        return RPCNotification.event(params).json.serializedBytes()
    }

    // MARK: Repositories

    func socketPath(for uuid: String) -> String {
        config.stateDir + "/p2p/" + String(uuid.prefix(8)) + ".sock"
    }

    func info(_ repo: Registry.Repo) throws -> RepoInfo {
        let key = try registry.onionKey(for: repo.uuid)
        return RepoInfo(uuid: repo.uuid, path: repo.path, bare: repo.bare, onion: key.onionAddress, port: repo.port,
                        socket: socketPath(for: repo.uuid), peers: repo.peers.count)
    }

    private func startListener(_ repo: Registry.Repo) throws {
        let annex = try AnnexRepo(path: repo.path)
        guard annex.uuid == repo.uuid else {
            throw AnnexRepo.OpenError(description: "\(repo.path) now has UUID \(annex.uuid), not the registered \(repo.uuid)")
        }
        let uuid = repo.uuid
        let registry = self.registry
        let listener = P2PListener(
            socketPath: socketPath(for: uuid), store: ObjectStore(repo: annex),
            authenticator: RepoAuthenticator(repo: annex) { token in registry.access(of: token, in: uuid) },
            limits: config.listenerLimits,
            events: ListenerEvents(daemon: self, repo: repo.path, uuid: uuid),
            report: { [logger] in logger.info("\(repo.path): \($0)") })
        try listener.start()
        listeners.withLock { $0[uuid] = listener }
    }

    private func stopListener(_ uuid: String) {
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
        d.register(RepoAdd.self) { [self] params, _ in try addRepo(params.path) }
        d.register(RepoList.self) { [self] _, _ in RepoList.Result(repos: try registry.all.map(info)) }
        d.register(RepoInfoMethod.self) { [self] params, _ in try info(try lookup(params.repo)) }
        d.register(RepoRemove.self) { [self] params, _ in
            let repo = try lookup(params.repo)
            let result = try info(repo)
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
        registerPairing(&d)
        return d
    }

    func lookup(_ selector: String) throws -> Registry.Repo {
        do { return try registry.require(selector) } catch let e as Registry.RegistryError { throw e.rpc }
    }

    private func addRepo(_ path: String) throws -> RepoInfo {
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
        return result
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
        let key = try registry.onionKey(for: repo.uuid)
        let address = "tor-annex::\(key.onionAddress):\(repo.port)"
        let token = AuthToken.generate()
        try editAuthFile(repo) { $0.add(token, address: address) }
        let peer = Registry.Peer(name: name, tokenSHA256: Registry.hash(token),
                                 access: PeerAccess(rawValue: params.access) ?? .readWrite, created: Date().timeIntervalSince1970)
        try registry.addPeer(peer, to: repo.uuid)
        try ensureOwnAddressRecorded(repo, address: address)
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
        let annex = try AnnexRepo(path: repo.path)
        let path = RepoAuthenticator.authFilePath(annex)
        try Posix.makeDirectories(Posix.dirname(path), mode: 0o700)
        var file = P2PAuthFile(text: (try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
        change(&file)
        try StateDirectory.writeAtomically(path, Array(file.text.utf8), mode: 0o600)
    }

    /// git-annex lists a repository's own addresses in creds/p2paddrs (`git annex p2p --gen-addresses` reads it).
    private func ensureOwnAddressRecorded(_ repo: Registry.Repo, address: String) throws {
        let annex = try AnnexRepo(path: repo.path)
        let path = annex.gitDir + "/annex/creds/p2paddrs"
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
