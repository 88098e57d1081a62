/// annexd's RPC methods (`noun.verb`). The registry of these types produces
/// the OpenRPC document (contrib/openrpc.json) and the daemon's dispatcher.

public enum DaemonStatusMethod: RPCMethod {
    public static let method = "daemon.status"
    public static let summary = "What the daemon is doing: version, uptime, repositories, connections"
    public typealias Result = DaemonStatus
}

public enum DaemonShutdown: RPCMethod {
    public static let method = "daemon.shutdown"
    public static let summary = "Stop the daemon gracefully (as SIGTERM does)"
    public typealias Result = RPCEmptyResult
}

public enum RepoAdd: RPCMethod {
    public static let method = "repo.add"
    public static let summary = "Register a git-annex repository and serve it on its own onion address"
    public struct Params: RPCParams, Equatable {
        public var path: String
        public init(path: String) { self.path = path }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            path = try r.required("path")
            try r.finish()
        }
        public var json: JSONValue { .object(["path": path.json]) }
        public static let schema = JSONSchema.object([
            .property("path", String.self, "Path of a git-annex repository (git annex init done)"),
        ])
    }
    public typealias Result = RepoInfo
}

public enum RepoList: RPCMethod {
    public static let method = "repo.list"
    public static let summary = "The registered repositories"
    public struct Result: RPCResultConvertible, Equatable {
        public var repos: [RepoInfo]
        public init(repos: [RepoInfo]) { self.repos = repos }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            repos = try r.required("repos")
            try r.finish()
        }
        public var json: JSONValue { .object(["repos": repos.json]) }
        public static let schema = JSONSchema.object([.property("repos", [RepoInfo].self)])
    }
}

public enum RepoInfoMethod: RPCMethod {
    public static let method = "repo.info"
    public static let summary = "One registered repository"
    public typealias Params = RepoSelector
    public typealias Result = RepoInfo
}

public enum RepoRemove: RPCMethod {
    public static let method = "repo.remove"
    public static let summary = "Stop serving a repository and forget it (its onion key is kept, so adding it again restores its address)"
    public typealias Params = RepoSelector
    public typealias Result = RepoInfo
}

public enum PeerInvite: RPCMethod {
    public static let method = "peer.invite"
    public static let summary = "Make a fresh token for a new peer: returns tor-annex::ONION:PORT:TOKEN, as `git annex p2p --gen-addresses` prints"
    public struct Params: RPCParams, Equatable {
        public var repo: String
        public var name: String?
        public var access: String
        public init(repo: String, name: String? = nil, access: String = "read-write") {
            self.repo = repo; self.name = name; self.access = access
        }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            repo = try r.required("repo")
            name = try r.optional("name")
            access = try r.optional("access", default: "read-write")
            try r.finish()
            guard access == "read-write" || access == "read-only" else {
                throw RPCError.invalidParams(reason: "invalid_access", "params.access: expected \"read-write\" or \"read-only\", got \"\(access)\"")
            }
        }
        public var json: JSONValue { .object(JSONObject(["repo": repo.json, "name": name?.json, "access": access.json])) }
        public static let schema = JSONSchema.object([
            .property("repo", String.self, "Path (or UUID) of a registered repository"),
            .property("name", String.self, required: false, "Name for the peer (default: peer-N)"),
            .property("access", schema: JSONSchema.stringEnum(["read-write", "read-only"]), required: false),
        ])
    }
    public struct Result: RPCResultConvertible, Equatable {
        public var address: String
        public var peer: PeerInfo
        public init(address: String, peer: PeerInfo) { self.address = address; self.peer = peer }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            address = try r.required("address")
            peer = try r.required("peer")
            try r.finish()
        }
        public var json: JSONValue { .object(["address": address.json, "peer": peer.json]) }
        public static let schema = JSONSchema.object([
            .property("address", String.self, "tor-annex::ONION:PORT:TOKEN, to give to the peer (secret)"),
            .property("peer", PeerInfo.self),
        ])
    }
}

public enum PeerList: RPCMethod {
    public static let method = "peer.list"
    public static let summary = "The peers of a repository"
    public typealias Params = RepoSelector
    public struct Result: RPCResultConvertible, Equatable {
        public var peers: [PeerInfo]
        public init(peers: [PeerInfo]) { self.peers = peers }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            peers = try r.required("peers")
            try r.finish()
        }
        public var json: JSONValue { .object(["peers": peers.json]) }
        public static let schema = JSONSchema.object([.property("peers", [PeerInfo].self)])
    }
}

public struct PeerSelector: RPCParams, Equatable {
    public var repo: String
    public var name: String
    public init(repo: String, name: String) { self.repo = repo; self.name = name }
    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        repo = try r.required("repo")
        name = try r.required("name")
        try r.finish()
    }
    public var json: JSONValue { .object(["repo": repo.json, "name": name.json]) }
    public static let schema = JSONSchema.object([
        .property("repo", String.self, "Path (or UUID) of a registered repository"),
        .property("name", String.self, "Peer name"),
    ])
}

public enum PeerRevoke: RPCMethod {
    public static let method = "peer.revoke"
    public static let summary = "Stop accepting a peer's token (its next connection is refused)"
    public typealias Params = PeerSelector
    public typealias Result = PeerInfo
}

public enum PeerSetAccess: RPCMethod {
    public static let method = "peer.setAccess"
    public static let summary = "Make a peer read-only (can get, cannot store or remove) or read-write"
    public struct Params: RPCParams, Equatable {
        public var repo: String
        public var name: String
        public var access: String
        public init(repo: String, name: String, access: String) { self.repo = repo; self.name = name; self.access = access }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            repo = try r.required("repo")
            name = try r.required("name")
            access = try r.required("access")
            try r.finish()
            guard access == "read-write" || access == "read-only" else {
                throw RPCError.invalidParams(reason: "invalid_access", "params.access: expected \"read-write\" or \"read-only\", got \"\(access)\"")
            }
        }
        public var json: JSONValue { .object(["repo": repo.json, "name": name.json, "access": access.json]) }
        public static let schema = JSONSchema.object([
            .property("repo", String.self), .property("name", String.self),
            .property("access", schema: JSONSchema.stringEnum(["read-write", "read-only"])),
        ])
    }
    public typealias Result = PeerInfo
}

public enum EventsSubscribe: RPCMethod {
    public static let method = "events.subscribe"
    public static let summary = "Stream events on this connection as `event` notifications: first those after `since` (or a snapshot), then live ones"
    public struct Params: RPCParams, Equatable {
        public var since: Int?
        public var types: [String]?
        public init(since: Int? = nil, types: [String]? = nil) { self.since = since; self.types = types }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            since = try r.optional("since")
            types = try r.optional("types")
            try r.finish()
            if let since, since < 0 { throw RPCError.invalidParams(reason: "invalid_since", "params.since: must be 0 or more") }
        }
        public var json: JSONValue { .object(JSONObject(["since": since?.json, "types": types?.json])) }
        public static let schema = JSONSchema.object([
            .property("since", Int.self, required: false, "Replay events with a larger id (from the ring buffer), then stream"),
            .property("types", [String].self, required: false, "Only these event types"),
        ])
    }
    public struct Result: RPCResultConvertible, Equatable {
        public var boot: String
        public var latest: Int
        /// The id of the last event sent before live ones; nil when none is.
        public var replayThrough: Int?
        public init(boot: String, latest: Int, replayThrough: Int?) {
            self.boot = boot; self.latest = latest; self.replayThrough = replayThrough
        }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            boot = try r.required("boot")
            latest = try r.required("latest")
            replayThrough = try r.optional("replay_through")
            try r.finish()
        }
        public var json: JSONValue {
            .object(JSONObject(["boot": boot.json, "latest": latest.json, "replay_through": replayThrough?.json]))
        }
        public static let schema = JSONSchema.object([
            .property("boot", String.self, "Event ids are gapless within one boot"),
            .property("latest", Int.self, "Id of the newest event when the subscription started"),
            .property("replay_through", Int.self, required: false,
                      "Id of the last event sent before live ones: the snapshot's (without since), else the newest kept event after since of the chosen types; absent when there is none. A client that wants only what is already there stops after it (or at an event.overflow)"),
        ])
    }
}

public enum AnnexdAPI {
    public static let version = "0.1.0"
    /// Every method, for the dispatcher and the OpenRPC document.
    nonisolated(unsafe) public static let methods: [any RPCMethod.Type] = [
        DaemonStatusMethod.self, DaemonShutdown.self,
        RepoAdd.self, RepoList.self, RepoInfoMethod.self, RepoRemove.self, RepoSet.self,
        PeerInvite.self, PeerList.self, PeerRevoke.self, PeerSetAccess.self, PeerLink.self,
        RemoteListMethod.self, RemoteRemove.self,
        EventsSubscribe.self,
        TorStatusMethod.self, TorEnableSystem.self,
        PairStart.self, PairSubmit.self, PairCancel.self,
        TransferStart.self, TransferList.self, TransferGet.self,
        TransferPause.self, TransferResume.self, TransferCancel.self, TransferRetry.self,
        SettingsGet.self, SettingsSet.self,
        ContentDrop.self,
        SyncRun.self,
        SyncPlanMethod.self,
    ]

    /// OpenRPC extensions: `x-events`, the event catalogue.
    public static var extensions: JSONObject { ["x-events": EventCatalogue.openRPC] }

    public static var registry: MethodRegistry { MethodRegistry(version: version, methods: methods, extensions: extensions) }
}

public enum PeerLink: RPCMethod {
    public static let method = "peer.link"
    public static let summary = "Link to a peer's repository from its address (tor-annex::ONION:PORT:TOKEN), as `git annex p2p --link` does: connects and authenticates first, then adds the git remote"
    public struct Params: RPCParams, Equatable {
        public var repo: String
        public var name: String
        public var address: String
        public init(repo: String, name: String, address: String) { self.repo = repo; self.name = name; self.address = address }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            repo = try r.required("repo")
            name = try r.required("name")
            address = try r.required("address")
            try r.finish()
        }
        public var json: JSONValue { .object(["repo": repo.json, "name": name.json, "address": address.json]) }
        public static let schema = JSONSchema.object([
            .property("repo", String.self, "Path (or UUID) of a registered repository"),
            .property("name", String.self, "Name of the git remote to add"),
            .property("address", String.self, "tor-annex::ONION:PORT:TOKEN from the peer (e.g. `annex-cli invite` or `git annex p2p --gen-addresses`)"),
        ])
    }
    public typealias Result = RemoteInfo
}

public enum RemoteListMethod: RPCMethod {
    public static let method = "remote.list"
    public static let summary = "The tor-annex remotes of a repository"
    public typealias Params = RepoSelector
    public struct Result: RPCResultConvertible, Equatable {
        public var remotes: [RemoteInfo]
        public init(remotes: [RemoteInfo]) { self.remotes = remotes }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            remotes = try r.required("remotes")
            try r.finish()
        }
        public var json: JSONValue { .object(["remotes": remotes.json]) }
        public static let schema = JSONSchema.object([.property("remotes", [RemoteInfo].self)])
    }
}

public enum RemoteRemove: RPCMethod {
    public static let method = "remote.remove"
    public static let summary = "Remove a tor-annex remote and its stored token"
    public typealias Params = PeerSelector
    public typealias Result = RemoteInfo
}

/// A git remote of a repository that reaches a peer over tor.
public struct RemoteInfo: RPCResultConvertible, Equatable {
    public var name: String
    public var address: String
    public var uuid: String?
    public init(name: String, address: String, uuid: String?) { self.name = name; self.address = address; self.uuid = uuid }
    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        name = try r.required("name")
        address = try r.required("address")
        uuid = try r.optional("uuid")
        try r.finish()
    }
    public var json: JSONValue { .object(JSONObject(["name": name.json, "address": address.json, "uuid": uuid?.json])) }
    public static let schema = JSONSchema.object([
        .property("name", String.self, "git remote name"),
        .property("address", String.self, "tor-annex::ONION:PORT (the token is not shown)"),
        .property("uuid", String.self, required: false, "git-annex UUID of the peer repository"),
    ])
}
