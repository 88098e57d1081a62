#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOCore
import Shared

/// Linking to a peer's repository, as `git annex p2p --link` does: authenticate through tor
/// first, then `git remote add`, the remote's annex-uuid, and the token in creds/ where
/// git-annex's own tor-annex remote code reads it. Also lists and removes those remotes.
public final class LinkingService: Sendable {
    public enum LinkError: ServiceError {
        case invalidAddress(TorAnnexAddress.ParseError)
        case invalidName(PeerName.InvalidName)
        case remoteExists(name: String, repo: String, url: String)
        /// tor, the SOCKS port or the peer could not be reached (reason from the connector).
        case unreachable(reason: String, message: String)
        case authFailed(address: String)
        case protocolError(address: String, why: String)
        case gitFailed(name: String, repo: String, why: String)
        case remoteNotFound(name: String, repo: String)

        /// Worth trying again shortly (pairing races the other side storing its token).
        public var isTransient: Bool {
            switch self {
            case .unreachable, .authFailed, .protocolError: true
            default: false
            }
        }

        public var kind: FailureKind {
            switch self {
            case .invalidAddress, .invalidName: .invalidArgument
            case .remoteExists: .alreadyExists
            case .unreachable, .protocolError: .unavailable
            case .authFailed: .permissionDenied
            case .gitFailed: .gitFailed
            case .remoteNotFound: .notFound
            }
        }
        public var reason: String {
            switch self {
            case .invalidAddress: "invalid_address"
            case .invalidName: "invalid_remote_name"
            case .remoteExists: "remote_exists"
            case .unreachable(let reason, _): reason
            case .authFailed: "auth_failed"
            case .protocolError: "protocol_error"
            case .gitFailed: "git_failed"
            case .remoteNotFound: "remote_not_found"
            }
        }
        public var description: String {
            switch self {
            case .invalidAddress(let e):
                "params.address: \(e); expected tor-annex::ONION.onion:PORT:TOKEN as `annex-cli invite` or `git annex p2p --gen-addresses` prints it"
            case .invalidName(let e): "params.name: \(e)"
            case .remoteExists(let name, let repo, let url): "\(repo) already has a remote named \(name) (\(url)); choose another name"
            case .unreachable(_, let message): message
            case .authFailed(let address): "the peer at \(address) refused the token: ask for a fresh invitation"
            case .protocolError(let address, let why): "talking to \(address) failed: \(why)"
            case .gitFailed(let name, let repo, let why): "linking \(name) in \(repo) failed: \(why)"
            case .remoteNotFound(let name, let repo): "\(repo) has no tor-annex remote named \(name); `annex-cli remote list` shows them"
            }
        }
    }

    let repos: RepositoryService
    let creds: CredsStore
    let events: EventLog
    /// Reaches peers through tor's SOCKS port.
    let dialer: PeerDialer

    init(repos: RepositoryService, creds: CredsStore, events: EventLog, dialer: PeerDialer) {
        self.repos = repos
        self.creds = creds
        self.events = events
        self.dialer = dialer
    }

    /// Parses what `peer.link` was given.
    public static func parse(name: String, address: String) throws(LinkError) -> (PeerName, TorAnnexAddress) {
        let peer: TorAnnexAddress
        do { peer = try TorAnnexAddress(parsing: address, token: .required) } catch { throw .invalidAddress(error) }
        do { return (try PeerName(name), peer) } catch { throw .invalidName(error) }
    }

    /// Authenticates to `peer` (its address with a token), then adds it as remote `name`.
    public func link(_ repo: Registry.Repo, name: PeerName, peer: TorAnnexAddress) async throws -> RemoteInfo {
        guard let token = peer.token else { throw LinkError.invalidAddress(.init(problem: "it has no token")) }
        if let url = remoteURL(name.value, in: repo) { throw LinkError.remoteExists(name: name.value, repo: repo.path, url: url) }
        let theirUUID = try await authenticate(peer, token: token, as: repo.uuid)
        let annex = try repos.openRepo(repo)
        do {
            try Command.output(["git", "remote", "add", name.value, peer.address], cwd: repo.path)
            try Command.output(["git", "config", "remote.\(name.value).annex-uuid", theirUUID], cwd: repo.path)
            try creds.storeRemoteToken(annex, onion: peer.onion, token)
        } catch {
            throw LinkError.gitFailed(name: name.value, repo: repo.path, why: "\(error)")
        }
        events.publish(PeerLinked(repo: RepositoryService.eventRepo(repo), remote: name.value, remoteUUID: theirUUID, address: peer.address))
        return RemoteInfo(name: name.value, address: peer.address, uuid: theirUUID)
    }

    /// The URL of remote `name`, if the repository has one.
    func remoteURL(_ name: String, in repo: Registry.Repo) -> String? {
        guard let url = try? Command.output(["git", "config", "--get", "remote.\(name).url"], cwd: repo.path) else { return nil }
        let trimmed = url.trimmingCharacters(in: .newlines)
        return trimmed.isEmpty ? nil : trimmed
    }

    /// Connects through tor and authenticates; the peer's UUID.
    private func authenticate(_ peer: TorAnnexAddress, token: AuthToken, as uuid: String) async throws(LinkError) -> String {
        let socks = await dialer.socks()
        let dialer = self.dialer
        // Blocking network work on its own thread, not on the concurrency pool.
        do {
            return try await Blocking.run {
                do {
                    let client = try dialer.connect(peer, token: token, as: uuid, store: nil, socksAddress: socks)
                    defer { client.close() }
                    return client.serverUUID ?? ""
                } catch let error as PeerDialer.DialError {
                    switch error.code {
                    case "auth_failed": throw LinkError.authFailed(address: peer.address)
                    case "peer_unreachable": throw LinkError.unreachable(reason: error.reason, message: error.description)
                    default: throw LinkError.protocolError(address: peer.address, why: error.description)
                    }
                }
            }
        } catch let e as LinkError {
            throw e
        } catch {
            throw .protocolError(address: peer.address, why: "\(error)")
        }
    }

    /// The repository's tor-annex remotes.
    public func remotes(of repo: Registry.Repo) -> [RemoteInfo] {
        let out = (try? Command.output(["git", "config", "--get-regexp", "^remote\\..*\\.(url|annex-uuid)$"], cwd: repo.path)) ?? ""
        var urls: [(String, String)] = [], uuids: [String: String] = [:]
        for line in out.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            let key = parts[0]
            if key.hasSuffix(".url"), parts[1].hasPrefix(TorAnnexAddress.scheme) {
                urls.append((String(key.dropFirst("remote.".count).dropLast(".url".count)), parts[1]))
            } else if key.hasSuffix(".annex-uuid") {
                uuids[String(key.dropFirst("remote.".count).dropLast(".annex-uuid".count))] = parts[1]
            }
        }
        return urls.map { RemoteInfo(name: $0.0, address: $0.1, uuid: uuids[$0.0]) }
    }

    /// Removes tor-annex remote `name`, and its token when no other remote uses that onion.
    public func unlink(_ repo: Registry.Repo, name: String) throws -> RemoteInfo {
        guard let remote = remotes(of: repo).first(where: { $0.name == name }) else {
            throw LinkError.remoteNotFound(name: name, repo: repo.path)
        }
        do { try Command.output(["git", "remote", "remove", name], cwd: repo.path) } catch {
            throw LinkError.gitFailed(name: name, repo: repo.path, why: "\(error)")
        }
        if let onion = (try? TorAnnexAddress(parsing: remote.address))?.onion,
           !remotes(of: repo).contains(where: { (try? TorAnnexAddress(parsing: $0.address))?.onion == onion }) {
            creds.removeRemoteToken(try repos.openRepo(repo), onion: onion)
        }
        events.publish(PeerUnlinked(repo: RepositoryService.eventRepo(repo), remote: name))
        return remote
    }
}
