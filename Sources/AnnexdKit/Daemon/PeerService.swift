import Foundation
import Shared

/// The peers of a repository: who holds a token it accepts, and with what access. A token
/// lives only in the repository's creds/p2pauth (as git-annex keeps it); the registry keeps
/// its hash, the peer's name and access level.
public final class PeerService: Sendable {
    public enum PeerError: ServiceError {
        case notFound(peer: String, repo: String)
        case exists(peer: String, repo: String)
        case invalidName(PeerName.InvalidName)

        public var kind: FailureKind {
            switch self {
            case .notFound: .notFound
            case .exists: .alreadyExists
            case .invalidName: .invalidArgument
            }
        }
        public var reason: String {
            switch self {
            case .notFound: "peer_not_found"
            case .exists: "peer_exists"
            case .invalidName: "invalid_peer_name"
            }
        }
        public var details: JSONObject {
            switch self {
            case .notFound(let peer, _), .exists(let peer, _): ["peer": .string(peer)]
            case .invalidName(let e): ["name": .string(e.name)]
            }
        }
        public var description: String {
            switch self {
            case .notFound(let peer, let repo): "\(repo) has no peer named \(peer); `annex-cli peer list` shows them"
            case .exists(let peer, let repo): "\(repo) already has a peer named \(peer); choose another name"
            case .invalidName(let e): "\(e)"
            }
        }
    }

    let repos: RepositoryService
    let creds: CredsStore
    let events: EventLog
    var registry: Registry { repos.registry }

    init(repos: RepositoryService, creds: CredsStore, events: EventLog) {
        self.repos = repos
        self.creds = creds
        self.events = events
    }

    public func list(_ repo: Registry.Repo) -> [PeerInfo] { repo.peers.map(Self.info) }

    static func info(_ p: Registry.Peer) -> PeerInfo {
        PeerInfo(name: p.name, access: p.access.rawValue, created: p.created)
    }

    /// A fresh token for a new peer: the address with the token to give it, and the peer.
    /// Invitations of one repository run one at a time, so each gets its own name and token.
    public func invite(_ selector: String, name: String?, access: PeerAccess) throws -> (address: TorAnnexAddress, peer: PeerInfo) {
        let annex = try repos.openRepo(try repos.lookup(selector))
        return try creds.serialized(annex.gitDir) {
            let repo = try repos.lookup(selector)
            let peerName = try name.map(Self.validName) ?? PeerName.unused(among: Set(repo.peers.map(\.name)))
            let address = try repos.address(of: repo)
            let token = AuthToken.generate()
            let peer = Registry.Peer(name: peerName.value, tokenSHA256: Registry.hash(token), access: access,
                                     created: Date().timeIntervalSince1970)
            guard try registry.addPeer(peer, to: repo.uuid) else { throw PeerError.exists(peer: peerName.value, repo: repo.path) }
            try creds.editAuth(annex) { $0.add(token, address: address.address) }
            try creds.recordOwnAddress(annex, address)
            events.publish(PeerInvited(repo: RepositoryService.eventRepo(repo), peer: peerName.value, access: access.rawValue))
            return (address.with(token: token), Self.info(peer))
        }
    }

    /// Stores a token a paired repository will present (pairing), as peer `name`.
    func addPaired(_ repo: Registry.Repo, name: PeerName, token: AuthToken) throws {
        let annex = try repos.openRepo(repo)
        try creds.serialized(annex.gitDir) {
            let peer = Registry.Peer(name: name.value, tokenSHA256: Registry.hash(token), access: .readWrite,
                                     created: Date().timeIntervalSince1970)
            guard try registry.addPeer(peer, to: repo.uuid) else { throw PeerError.exists(peer: name.value, repo: repo.path) }
            try creds.editAuth(annex) { $0.add(token, address: nil) }
        }
    }

    /// Takes a paired token back (a pairing that could not link).
    func removePaired(_ repo: Registry.Repo, name: PeerName, token: AuthToken) {
        guard let annex = try? repos.openRepo(repo) else { return }
        creds.serialized(annex.gitDir) {
            _ = try? creds.editAuth(annex) { $0.remove(token) }
            try? registry.updatePeer(named: name.value, in: repo.uuid) { $0 = nil }
        }
    }

    public func revoke(_ selector: String, name: String) throws -> PeerInfo {
        let annex = try repos.openRepo(try repos.lookup(selector))
        return try creds.serialized(annex.gitDir) {
            let repo = try repos.lookup(selector)
            let p = try peer(name, in: repo)
            try creds.editAuth(annex) { file in
                for t in file.tokens where Registry.hash(t) == p.tokenSHA256 { file.remove(t) }
            }
            try registry.updatePeer(named: name, in: repo.uuid) { $0 = nil }
            events.publish(PeerRevoked(repo: RepositoryService.eventRepo(repo), peer: name))
            return Self.info(p)
        }
    }

    public func setAccess(_ selector: String, name: String, access: PeerAccess) throws -> PeerInfo {
        let repo = try repos.lookup(selector)
        _ = try peer(name, in: repo)
        try registry.updatePeer(named: name, in: repo.uuid) { $0?.access = access }
        let updated = try peer(name, in: try repos.lookup(selector))
        events.publish(PeerAccessChanged(repo: RepositoryService.eventRepo(repo), peer: name, access: access.rawValue))
        return Self.info(updated)
    }

    private func peer(_ name: String, in repo: Registry.Repo) throws(PeerError) -> Registry.Peer {
        guard let p = repo.peers.first(where: { $0.name == name }) else { throw .notFound(peer: name, repo: repo.path) }
        return p
    }

    static func validName(_ text: String) throws(PeerError) -> PeerName {
        do { return try PeerName(text) } catch { throw .invalidName(error) }
    }
}
