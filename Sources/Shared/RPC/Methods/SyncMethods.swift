/// Git-level sync with a repository's tor-annex remotes (git-annex's own fetch, merge, push).

public enum SyncDirection: String, JSONStringEnum, Sendable {
    case pull, push, both

    public var pulls: Bool { self != .push }
    public var pushes: Bool { self != .pull }
}

public enum SyncRun: RPCMethod {
    public static let method = "sync.run"
    public static let summary = "Sync a repository's branches with its tor-annex remotes as `git annex sync --no-content` does: pull from each (git-annex fetches through annexd and merges), then push BRANCH, synced/BRANCH and synced/git-annex; a peer that fails gets its own error, the others go on"
    public struct Params: RPCParams, Equatable {
        public var repo: String
        /// Remote names or UUIDs; absent: every tor-annex remote not set annex-ignore or annex-sync=false.
        public var peers: [String]?
        /// Also transfer wanted content (not yet: refused).
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
            .property("content", Bool.self, required: false, "Also get and put wanted content (not yet supported: refused)"),
            .property("direction", SyncDirection.self, required: false, "pull (fetch and merge), push, or both (the default)"),
        ])
    }
    public struct Result: RPCResultConvertible, Equatable {
        public var peers: [SyncPeerResult]
        /// The current branch or the git-annex branch changed by merging.
        public var merged: Bool
        public init(peers: [SyncPeerResult], merged: Bool) { self.peers = peers; self.merged = merged }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            peers = try r.required("peers")
            merged = try r.required("merged")
            try r.finish()
        }
        public var json: JSONValue { .object(["peers": peers.json, "merged": merged.json]) }
        public static let schema = JSONSchema.object([
            .property("peers", [SyncPeerResult].self, "One per remote synced with, in the order of the repository's config"),
            .property("merged", Bool.self, "True when merging changed the current branch or the git-annex branch"),
        ])
    }
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
