#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import Shared
import Synchronization

/// The repositories annexd serves and their peers, persisted as
/// `registry.json` in the state directory (written atomically, 0600), with one
/// onion key per repository in `keys/<uuid>.hs_ed25519_secret_key` (0600).
public final class Registry: Sendable {
    public struct Peer: Sendable, Equatable {
        public var name: String
        /// SHA-256 of the token: the token itself lives only in the repository's creds/p2pauth.
        public var tokenSHA256: String
        public var access: PeerAccess
        public var created: Double
    }

    public struct Repo: Sendable, Equatable {
        public var uuid: String
        public var path: String
        public var bare: Bool
        public var port: Int
        public var added: Double
        public var peers: [Peer]
    }

    public enum RegistryError: ServiceError {
        case notFound(selector: String)
        case onionKeyMissing(uuid: String, directory: String)
        case unsupportedVersion(Int)

        public var kind: FailureKind {
            switch self {
            case .notFound: .notFound
            case .onionKeyMissing, .unsupportedVersion: .invalidState
            }
        }
        public var reason: String {
            switch self {
            case .notFound: "repo_not_found"
            case .onionKeyMissing: "onion_key_missing"
            case .unsupportedVersion: "registry_version"
            }
        }
        public var details: JSONObject {
            if case .notFound(let selector) = self { return ["repo": .string(selector)] }
            return [:]
        }
        public var description: String {
            switch self {
            case .notFound(let selector): "no registered repository at \(selector); register it with `annex-cli repo add`"
            case .onionKeyMissing(let uuid, let dir): "the onion key of \(uuid) is missing from \(dir)/keys"
            case .unsupportedVersion(let v): "registry.json has version \(v); this annexd reads version 1"
            }
        }
    }

    let state: StateDirectory
    private let repos: Mutex<[Repo]>
    /// Onion keys already read from keys/ (repo.list and repo.info need every address).
    private let keys = Mutex<[String: OnionKey]>([:])

    public init(state: StateDirectory) throws {
        self.state = state
        var loaded: [Repo] = []
        if let bytes = state.read("registry.json") {
            let json = try JSONValue(parsing: bytes, maxBytes: 64 << 20)
            loaded = try Self.decode(json)
        }
        repos = Mutex(loaded)
    }

    public var all: [Repo] { repos.withLock { $0 } }

    /// Finds a repository by path (any path inside it resolves to it) or UUID.
    public func find(_ selector: String) -> Repo? {
        let resolved = Posix.realpath(selector)
        return repos.withLock { list in
            list.first { $0.uuid == selector || $0.path == selector || (resolved != nil && $0.path == resolved) }
                ?? list.first { r in resolved.map { $0.hasPrefix(r.path + "/") } ?? false }
        }
    }

    public func require(_ selector: String) throws(RegistryError) -> Repo {
        guard let r = find(selector) else { throw .notFound(selector: selector) }
        return r
    }

    /// Registers a repository (or returns it if already registered) and its onion key.
    public func add(_ annex: AnnexRepo) throws -> (repo: Repo, key: OnionKey, isNew: Bool) {
        if let existing = find(annex.uuid) {
            return (existing, try onionKey(for: existing.uuid), false)
        }
        let key = try onionKey(for: annex.uuid, create: true)
        let repo = Repo(uuid: annex.uuid, path: annex.path, bare: annex.isBare,
                        port: Int.random(in: 1025...65534), added: Date().timeIntervalSince1970, peers: [])
        try update { $0.append(repo) }
        return (repo, key, true)
    }

    public func remove(_ uuid: String) throws {
        try update { $0.removeAll { $0.uuid == uuid } }
    }

    /// Adds `peer`; false (nothing changed) when the repository already has a peer of that name.
    @discardableResult
    public func addPeer(_ peer: Peer, to uuid: String) throws -> Bool {
        var added = false
        try update { list in
            guard let i = list.firstIndex(where: { $0.uuid == uuid }), !list[i].peers.contains(where: { $0.name == peer.name }) else { return }
            list[i].peers.append(peer)
            added = true
        }
        return added
    }

    public func updatePeer(named name: String, in uuid: String, _ change: (inout Peer?) -> Void) throws {
        try update { list in
            guard let i = list.firstIndex(where: { $0.uuid == uuid }),
                  let j = list[i].peers.firstIndex(where: { $0.name == name }) else { return }
            var p: Peer? = list[i].peers[j]
            change(&p)
            if let p { list[i].peers[j] = p } else { list[i].peers.remove(at: j) }
        }
    }

    /// The access a token grants, from the peer record holding its hash.
    /// What a token annexd made for a peer of repository `uuid` grants; nil for other tokens.
    public func grant(of token: AuthToken, in uuid: String) -> PeerGrant? {
        let hash = Self.hash(token)
        return repos.withLock { list in
            list.first { $0.uuid == uuid }?.peers.first { $0.tokenSHA256 == hash }.map { PeerGrant(access: $0.access, peer: $0.name) }
        }
    }

    public static func hash(_ token: AuthToken) -> String {
        Hex.encode(SHA256.hash(data: Array(token.value.utf8)))
    }

    /// The repository's onion key, created (0600) the first time.
    public func onionKey(for uuid: String, create: Bool = false) throws -> OnionKey {
        if let cached = keys.withLock({ $0[uuid] }) { return cached }
        let name = "keys/\(uuid).hs_ed25519_secret_key"
        if let bytes = state.read(name) {
            let key = try OnionKey(secretKeyFile: bytes)
            keys.withLock { $0[uuid] = key }
            return key
        }
        guard create else {
            throw RegistryError.onionKeyMissing(uuid: uuid, directory: state.path)
        }
        let key = OnionKey.generate()
        try state.writeAtomically(name, key.secretKeyFileBytes, mode: 0o600)
        keys.withLock { $0[uuid] = key }
        return key
    }

    private func update(_ change: (inout [Repo]) -> Void) throws {
        try repos.withLock { list in
            var copy = list
            change(&copy)
            try state.writeAtomically("registry.json", Self.encode(copy).serializedBytes(), mode: 0o600)
            list = copy
        }
    }

    // MARK: JSON

    static func encode(_ repos: [Repo]) -> JSONValue {
        .object(["version": 1, "repos": .array(repos.map { r in
            .object(["uuid": .string(r.uuid), "path": .string(r.path), "bare": .bool(r.bare), "port": .int(Int64(r.port)),
                     "added": .double(r.added), "peers": .array(r.peers.map { p in
                        .object(["name": .string(p.name), "token_sha256": .string(p.tokenSHA256),
                                 "access": .string(p.access.rawValue), "created": .double(p.created)])
                     })])
        })])
    }

    static func decode(_ json: JSONValue) throws -> [Repo] {
        var top = try JSONObjectReader(json, path: "registry")
        let version: Int = try top.required("version")
        guard version == 1 else {
            throw RegistryError.unsupportedVersion(version)
        }
        let list: [JSONValue] = try top.required("repos")
        return try list.enumerated().map { i, item in
            var r = try JSONObjectReader(item, path: "registry.repos[\(i)]")
            let peers: [JSONValue] = try r.required("peers")
            let repo = Repo(
                uuid: try r.required("uuid"), path: try r.required("path"), bare: try r.required("bare"),
                port: try r.required("port"), added: try r.required("added"),
                peers: try peers.enumerated().map { j, pj in
                    var p = try JSONObjectReader(pj, path: "registry.repos[\(i)].peers[\(j)]")
                    let access: String = try p.required("access")
                    return Peer(name: try p.required("name"), tokenSHA256: try p.required("token_sha256"),
                                access: PeerAccess(rawValue: access) ?? .readOnly, created: try p.required("created"))
                })
            return repo
        }
    }
}
