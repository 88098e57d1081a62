#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import Shared
import Synchronization

/// The repositories annexd serves: the registry, one P2P listener each, its onion with the
/// tor manager, and the adoption of `git annex enable-tor` setups.
public final class RepositoryService: Sendable {
    public enum RepositoryError: ServiceError {
        case notAnAnnexRepo(path: String, why: String)
        case cannotServe(path: String, why: String)

        public var kind: FailureKind {
            switch self {
            case .notAnAnnexRepo: .invalidArgument
            case .cannotServe: .unavailable
            }
        }
        public var reason: String {
            switch self {
            case .notAnAnnexRepo: "not_an_annex_repo"
            case .cannotServe: "listener_failed"
            }
        }
        public var details: JSONObject {
            if case .notAnAnnexRepo(let path, _) = self { return ["path": .string(path)] }
            return [:]
        }
        public var description: String {
            switch self {
            case .notAnAnnexRepo(_, let why): why
            case .cannotServe(let path, let why): "cannot serve \(path): \(why)"
            }
        }
    }

    public struct Settings: Sendable {
        public var stateDir: String
        public var systemTorrc: String
        public var listenerLimits: P2PListener.Limits
    }

    public let registry: Registry
    let settings: Settings
    let events: EventLog
    let tor: TorManager?
    let logger: Logger
    private let listeners = Mutex<[String: P2PListener]>([:])
    /// Repositories served on their `git annex enable-tor` socket and address.
    private let adopted = Mutex<[String: EnableTorService]>([:])

    init(registry: Registry, settings: Settings, events: EventLog, tor: TorManager?, logger: Logger) {
        self.registry = registry
        self.settings = settings
        self.events = events
        self.tor = tor
        self.logger = logger
    }

    // MARK: Lifecycle

    /// Serves every registered repository; one that cannot be served is reported (repo.failed).
    func startAll() {
        // Opening a repository runs git; with many repositories, on every core at once.
        let repos = registry.all
        DispatchQueue.concurrentPerform(iterations: repos.count) { i in
            let repo = repos[i]
            do { try startListener(repo) } catch {
                logger.error("cannot serve \(repo.path): \(error)")
                events.publish(RepoFailed(repo: Self.eventRepo(repo), error: "\(error)"))
            }
        }
    }

    /// Every served repository's onion, for the tor manager's start.
    func addServedOnions() async {
        guard let tor else { return }
        for repo in registry.all where listeners.withLock({ $0[repo.uuid] != nil }) {
            if let s = try? onionService(repo) { await tor.add(s) }
        }
    }

    /// Stops accepting; transfers in flight end (their partials stay for resume).
    func stopAll() {
        let all = listeners.withLock { l in defer { l = [:] }; return Array(l.values) }
        for l in all { l.stop(); l.store.log.close() }
    }

    // MARK: Queries

    public func lookup(_ selector: String) throws(Registry.RegistryError) -> Registry.Repo {
        try registry.require(selector)
    }

    static func eventRepo(_ repo: Registry.Repo) -> EventRepo { EventRepo(path: repo.path, uuid: repo.uuid) }

    public func info(_ repo: Registry.Repo) throws -> RepoInfo {
        let address = try address(of: repo)
        let socket = adopted.withLock({ $0[repo.uuid] })?.socket ?? socketPath(for: repo.uuid)
        return RepoInfo(uuid: repo.uuid, path: repo.path, bare: repo.bare, onion: address.onion, port: address.port,
                        socket: socket, peers: repo.peers.count)
    }

    public func list() throws -> [RepoInfo] { try registry.all.map(info) }

    /// Where peers reach `repo`: its enable-tor address when adopted, else annexd's own onion.
    public func address(of repo: Registry.Repo) throws -> TorAnnexAddress {
        if let a = adopted.withLock({ $0[repo.uuid] }) { return TorAnnexAddress(onion: a.onion, port: a.port) }
        return try ownAddress(of: repo)
    }

    /// annexd's own onion for `repo` (what pairing advertises), whether or not it is adopted.
    public func ownAddress(of repo: Registry.Repo) throws -> TorAnnexAddress {
        TorAnnexAddress(onion: try registry.onionKey(for: repo.uuid).onionAddress, port: repo.port)
    }

    /// The repository as its listener opened it (no git run), or opened now.
    public func openRepo(_ repo: Registry.Repo) throws -> AnnexRepo {
        if let served = listeners.withLock({ $0[repo.uuid]?.store.repo }) { return served }
        return try AnnexRepo(path: repo.path)
    }

    /// The object store its listener uses (one location-log process per repository), or a new one.
    public func objectStore(_ repo: Registry.Repo) throws -> ObjectStore {
        if let served = listeners.withLock({ $0[repo.uuid]?.store }) { return served }
        return ObjectStore(repo: try AnnexRepo(path: repo.path))
    }

    public var connectionCount: Int { listeners.withLock { $0.values.reduce(0) { $0 + $1.connectionCount } } }

    func socketPath(for uuid: String) -> String {
        settings.stateDir + "/p2p/" + String(uuid.prefix(8)) + ".sock"
    }

    /// The onion annexd publishes for `repo`.
    func onionService(_ repo: Registry.Repo) throws -> TorManager.Service {
        // An adopted repository is published by system tor as well; annexd's own onion
        // (which peers invited earlier may use) then leads to the adopted socket.
        let socket = adopted.withLock({ $0[repo.uuid] })?.socket ?? socketPath(for: repo.uuid)
        return TorManager.Service(uuid: repo.uuid, repo: repo.path, key: try registry.onionKey(for: repo.uuid),
                                  virtualPort: repo.port, socketPath: socket)
    }

    // MARK: Changes

    /// Registers and serves the repository at `path` (its onion too); the same info if it is registered already.
    public func add(path: String) async throws -> RepoInfo {
        let annex: AnnexRepo
        do { annex = try AnnexRepo(path: path) } catch {
            throw RepositoryError.notAnAnnexRepo(path: path, why: "\(error)")
        }
        let (repo, _, isNew) = try registry.add(annex)
        guard isNew else { return try info(repo) }
        do { try startListener(repo) } catch {
            try? registry.remove(repo.uuid)
            throw RepositoryError.cannotServe(path: annex.path, why: "\(error)")
        }
        let served = try info(repo)
        events.publish(RepoAdded(served))
        if let tor { await tor.add(try onionService(repo)) }
        return served
    }

    /// Stops serving `repo` and forgets it (its onion is withdrawn; the repository is untouched).
    public func remove(_ repo: Registry.Repo) async throws -> RepoInfo {
        let result = try info(repo)
        await tor?.remove(uuid: repo.uuid)
        stopListener(repo.uuid)
        try registry.remove(repo.uuid)
        events.publish(RepoRemoved(repo: Self.eventRepo(repo)))
        return result
    }

    /// Serves `repo` again, with its onion (after its enable-tor setup changed).
    func reserve(_ repo: Registry.Repo) async throws {
        await tor?.remove(uuid: repo.uuid)
        stopListener(repo.uuid)
        try startListener(repo)
        if let tor { await tor.add(try onionService(repo)) }
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
            authenticator: RepoAuthenticator(repo: annex) { token in registry.grant(of: token, in: uuid) },
            limits: settings.listenerLimits,
            events: ListenerEvents(log: events, repo: Self.eventRepo(repo)),
            report: { [logger] in logger.info("\(repo.path): \($0)") })
        try listener.start()
        listeners.withLock { $0[uuid] = listener }
        if let adoption {
            adopted.withLock { $0[uuid] = adoption }
            logger.info("\(repo.path): serving its git annex enable-tor onion \(adoption.onion) on \(adoption.socket)")
        }
    }

    private func stopListener(_ uuid: String) {
        adopted.withLock { _ = $0.removeValue(forKey: uuid) }
        if let l = listeners.withLock({ $0.removeValue(forKey: uuid) }) { l.stop(); l.store.log.close() }
    }

    /// `annex`'s enable-tor service in the system torrc, if it has one annexd can serve:
    /// its socket directory exists and nothing (git annex remotedaemon) listens there yet.
    private func enableTorService(_ annex: AnnexRepo) -> EnableTorService? {
        guard let torrc = try? String(contentsOfFile: settings.systemTorrc, encoding: .utf8),
              let addrs = try? String(contentsOfFile: CredsStore.directory(annex) + "/p2paddrs", encoding: .utf8),
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
}

/// Turns P2P session happenings into events.
final class ListenerEvents: P2PServerEvents, Sendable {
    let log: EventLog
    let repo: EventRepo
    init(log: EventLog, repo: EventRepo) {
        self.log = log
        self.repo = repo
    }
    func authenticated(clientUUID: String, peer: String?, ok: Bool) {
        if ok {
            log.publish(PeerConnected(repo: repo, clientUUID: clientUUID, peer: peer))
        } else {
            log.publish(PeerAuthFailed(repo: repo, clientUUID: clientUUID))
        }
    }
    func received(_ key: AnnexKey) { log.publish(ContentReceived(repo: repo, key: key.serialized)) }
    func sent(_ key: AnnexKey) { log.publish(ContentSent(repo: repo, key: key.serialized)) }
    func removed(_ key: AnnexKey) { log.publish(ContentRemoved(repo: repo, key: key.serialized)) }
}
