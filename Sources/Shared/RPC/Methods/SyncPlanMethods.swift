/// Content sync as a dry run: what `sync.run` with `content` would get, put and drop, and why.

public enum SyncPlanMethod: RPCMethod {
    public static let method = "sync.plan"
    public static let summary = "What a content sync would move, without moving anything: each key, the action (get, put, drop), the peer and the reason (preferred content, numcopies), as `git annex sync --content` decides it"
    public struct Params: RPCParams, Equatable {
        public var repo: String
        /// Only these peers (remote names or UUIDs); all the repository's tor-annex remotes that sync when nil.
        public var peers: [String]?
        public init(repo: String, peers: [String]? = nil) { self.repo = repo; self.peers = peers }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            repo = try r.required("repo")
            peers = try r.optional("peers")
            try r.finish()
        }
        public var json: JSONValue { .object(JSONObject(["repo": repo.json, "peers": peers?.json])) }
        public static let schema = JSONSchema.object([
            .property("repo", String.self, "Path (or UUID) of a registered repository"),
            .property("peers", [String].self, required: false, "Only these peers (tor-annex remote names or UUIDs); by default every tor-annex remote that syncs (not annex-ignore, annex-sync not false)"),
        ])
    }
    public typealias Result = SyncPlan
}

/// What a content sync would do.
public struct SyncPlan: RPCResultConvertible, Equatable {
    /// In order: gets, then puts (peer by peer), then drops.
    public var actions: [SyncAction]
    /// Wanted here but on none of the peers synced with: nothing can be done about them now.
    public var unavailable: [SyncAction]
    public init(actions: [SyncAction], unavailable: [SyncAction]) { self.actions = actions; self.unavailable = unavailable }
    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        actions = try r.required("actions")
        unavailable = try r.required("unavailable")
        try r.finish()
    }
    public var json: JSONValue { .object(["actions": actions.json, "unavailable": unavailable.json]) }
    public static let schema = JSONSchema.object([
        .property("actions", [SyncAction].self, "What would be done: gets, then puts peer by peer, then drops"),
        .property("unavailable", [SyncAction].self, "Gets wanted here that no synced peer has a copy of (peer is absent)"),
    ])
}

public enum SyncActionKind: String, JSONStringEnum, Sendable {
    case get, put, drop
}

/// One key to move or drop, and why.
public struct SyncAction: RPCResultConvertible, Equatable {
    public var action: SyncActionKind
    public var key: String
    public var file: String?
    /// get: a peer holding it (the transfer engine may use another that holds it); put: the
    /// destination; drop: the peer dropped from (absent: here).
    public var peer: TransferPeer?
    /// Why, for people: the preferred content expression (or its absence) that decided it.
    public var reason: String
    public init(action: SyncActionKind, key: String, file: String?, peer: TransferPeer?, reason: String) {
        self.action = action; self.key = key; self.file = file; self.peer = peer; self.reason = reason
    }
    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        action = try r.required("action")
        key = try r.required("key")
        file = try r.optional("file")
        peer = try r.optional("peer")
        reason = try r.required("reason")
        try r.finish()
    }
    public var json: JSONValue {
        .object(JSONObject(["action": action.json, "key": key.json, "file": file?.json, "peer": peer?.json, "reason": reason.json]))
    }
    public static let schema = JSONSchema.object([
        .property("action", SyncActionKind.self, "get (from the peer to here), put (from here to the peer), drop (here, or from the peer)"),
        .property("key", String.self, "The git-annex key"),
        .property("file", String.self, required: false, "The annexed file in the current branch"),
        .property("peer", TransferPeer.self, required: false, "get: a peer holding it; put: the destination; drop: the peer dropped from (absent: here)"),
        .property("reason", String.self, "Why: the preferred content expression that decided it, or that none is set"),
    ])
}
