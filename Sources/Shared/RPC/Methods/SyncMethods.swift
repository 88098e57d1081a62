/// Git-level sync with a repository's tor-annex remotes (git-annex's own fetch, merge, push).

public enum SyncDirection: String, JSONStringEnum, Sendable {
    case pull, push, both

    public var pulls: Bool { self != .push }
    public var pushes: Bool { self != .pull }
}

public enum SyncRun: RPCMethod {
    public static let method = "sync.run"
    public static let summary = "Sync a repository's branches with its tor-annex remotes as `git annex sync --no-content` does: pull from each (git-annex fetches through annexd and merges), then push BRANCH, synced/BRANCH and synced/git-annex; a peer that fails gets its own error, the others go on. With content, then queue what sync.plan lists (gets, puts) and drop safely what it lists to drop"
    public struct Params: RPCParams, Equatable {
        public var repo: String
        /// Remote names or UUIDs; absent: every tor-annex remote not set annex-ignore or annex-sync=false.
        public var peers: [String]?
        /// Also transfer wanted content and drop unwanted content (what sync.plan lists).
        public var content: Bool?
        public var direction: SyncDirection?
        public init(repo: String, peers: [String]? = nil, content: Bool? = nil, direction: SyncDirection? = nil) {
            self.repo = repo; self.peers = peers; self.content = content; self.direction = direction
        }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            repo = try r.required("repo")
            peers = try r.optional("peers")
            content = try r.optional("content")
            direction = try r.optional("direction")
            try r.finish()
        }
        public var json: JSONValue {
            .object(JSONObject(["repo": repo.json, "peers": peers?.json, "content": content?.json, "direction": direction?.json]))
        }
        public static let schema = JSONSchema.object([
            .property("repo", String.self, "Path (or UUID) of a registered repository"),
            .property("peers", [String].self, required: false,
                      "tor-annex remotes (names or UUIDs) to sync with; default: all of them except those with remote.NAME.annex-ignore=true or annex-sync=false"),
            .property("content", Bool.self, required: false, "After the git-level sync, queue the gets and puts sync.plan lists (pull: gets and drops here; push: puts and drops from peers) and drop what it lists to drop, through the safe drop, once the transfers of those keys settled"),
            .property("direction", SyncDirection.self, required: false, "pull (fetch and merge), push, or both (the default)"),
        ])
    }
    public struct Result: RPCResultConvertible, Equatable {
        public var peers: [SyncPeerResult]
        /// The current branch or the git-annex branch changed by merging.
        public var merged: Bool
        /// With content: what was queued and dropped.
        public var content: SyncContentResult?
        public init(peers: [SyncPeerResult], merged: Bool, content: SyncContentResult? = nil) {
            self.peers = peers; self.merged = merged; self.content = content
        }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            peers = try r.required("peers")
            merged = try r.required("merged")
            content = try r.optional("content")
            try r.finish()
        }
        public var json: JSONValue { .object(JSONObject(["peers": peers.json, "merged": merged.json, "content": content?.json])) }
        public static let schema = JSONSchema.object([
            .property("peers", [SyncPeerResult].self, "One per remote synced with, in the order of the repository's config"),
            .property("merged", Bool.self, "True when merging changed the current branch or the git-annex branch"),
            .property("content", SyncContentResult.self, required: false, "With content: the transfers queued and the drops done"),
        ])
    }
}

/// What the content part of a sync did.
public struct SyncContentResult: RPCResultConvertible, Equatable {
    /// The transfers queued for the plan's gets and puts (ones already queued are included).
    public var transfers: [String]
    public var gets: Int
    public var puts: Int
    /// Content dropped.
    public var drops: Int
    /// Drops refused (not enough copies, a peer unreachable), each with its reason.
    public var refused: [DropResult]
    public init(transfers: [String], gets: Int, puts: Int, drops: Int, refused: [DropResult]) {
        self.transfers = transfers; self.gets = gets; self.puts = puts; self.drops = drops; self.refused = refused
    }
    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        transfers = try r.required("transfers")
        gets = try r.required("gets")
        puts = try r.required("puts")
        drops = try r.required("drops")
        refused = try r.required("refused")
        try r.finish()
    }
    public var json: JSONValue {
        .object(["transfers": transfers.json, "gets": gets.json, "puts": puts.json, "drops": drops.json, "refused": refused.json])
    }
    public static let schema = JSONSchema.object([
        .property("transfers", [String].self, "Ids of the transfers queued (transfer.get, or the transfer.* events, follow them)"),
        .property("gets", Int.self, "Gets queued"),
        .property("puts", Int.self, "Puts queued"),
        .property("drops", Int.self, "Content dropped (here or from peers)"),
        .property("refused", [DropResult].self, "Drops refused, with the reason (the content stays)"),
    ])
}

/// What a sync did with one remote.
public struct SyncPeerResult: RPCResultConvertible, Equatable {
    /// The remote's annex-uuid (absent when git-annex does not know it yet).
    public var uuid: String?
    public var name: String
    /// Fetching brought refs that changed.
    public var pulled: Bool
    /// Refs were pushed to it (false too when it had everything already).
    public var pushed: Bool
    public var error: TransferFailure?
    public init(uuid: String?, name: String, pulled: Bool = false, pushed: Bool = false, error: TransferFailure? = nil) {
        self.uuid = uuid; self.name = name; self.pulled = pulled; self.pushed = pushed; self.error = error
    }
    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        uuid = try r.optional("uuid")
        name = try r.required("name")
        pulled = try r.required("pulled")
        pushed = try r.required("pushed")
        error = try r.optional("error")
        try r.finish()
    }
    public var json: JSONValue {
        .object(JSONObject(["uuid": uuid?.json, "name": name.json, "pulled": pulled.json, "pushed": pushed.json, "error": error?.json]))
    }
    public static let schema = JSONSchema.object([
        .property("uuid", String.self, required: false, "The remote's git-annex UUID"),
        .property("name", String.self, "The git remote's name"),
        .property("pulled", Bool.self, "Fetching from it changed its remote-tracking refs here"),
        .property("pushed", Bool.self, "Refs were pushed to it (false when it was current, or on error)"),
        .property("error", TransferFailure.self, required: false,
                  "Why this peer failed (the others went on): peer_unreachable, auth_failed, protocol_error, stalled, pull_failed (git annex sync's own words, e.g. a merge conflict it could not resolve), push_failed"),
    ])
}
