/// Annexed content itself: dropping it here or from a peer, with git-annex's safety.

public enum ContentDrop: RPCMethod {
    public static let method = "content.drop"
    public static let summary = "Remove annexed content here (or from a peer, with `from`), only when numcopies and mincopies other copies are verified (and mincopies of them locked or trusted) for the whole drop, as `git annex drop` does; each key's outcome is in `results`"
    public struct Params: RPCParams, Equatable {
        public var repo: String
        /// Files or directories, relative to the repository.
        public var paths: [String]?
        public var keys: [String]?
        /// Drop from this peer (a tor-annex remote's name or UUID) instead of here.
        public var from: String?
        public init(repo: String, paths: [String]? = nil, keys: [String]? = nil, from: String? = nil) {
            self.repo = repo; self.paths = paths; self.keys = keys; self.from = from
        }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            repo = try r.required("repo")
            paths = try r.optional("paths")
            keys = try r.optional("keys")
            from = try r.optional("from")
            try r.finish()
            if (paths ?? []).isEmpty && (keys ?? []).isEmpty {
                throw RPCError.invalidParams(reason: "nothing_to_drop", "params: give paths or keys (or both), at least one")
            }
        }
        public var json: JSONValue {
            .object(JSONObject(["repo": repo.json, "paths": paths?.json, "keys": keys?.json, "from": from?.json]))
        }
        public static let schema = JSONSchema.object([
            .property("repo", String.self, "Path (or UUID) of a registered repository"),
            .property("paths", [String].self, required: false, "Annexed files or directories, relative to the repository"),
            .property("keys", [String].self, required: false, "git-annex keys"),
            .property("from", String.self, required: false, "Drop from this peer (tor-annex remote name or UUID) instead of here"),
        ])
    }
    public struct Result: RPCResultConvertible, Equatable {
        public var results: [DropResult]
        public init(results: [DropResult]) { self.results = results }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            results = try r.required("results")
            try r.finish()
        }
        public var json: JSONValue { .object(["results": results.json]) }
        public static let schema = JSONSchema.object([
            .property("results", [DropResult].self, "One per key (a directory gives one per annexed file in it), in the order asked"),
        ])
    }
}

/// What became of one key of a `content.drop`.
public struct DropResult: RPCResultConvertible, Equatable {
    /// The key (absent when a path was not an annexed file).
    public var key: String?
    public var file: String?
    /// UUID of the repository it was dropped from (or would have been).
    public var from: String
    public var dropped: Bool
    public var error: TransferFailure?
    public init(key: String?, file: String?, from: String, dropped: Bool, error: TransferFailure? = nil) {
        self.key = key; self.file = file; self.from = from; self.dropped = dropped; self.error = error
    }
    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        key = try r.optional("key")
        file = try r.optional("file")
        from = try r.required("from")
        dropped = try r.required("dropped")
        error = try r.optional("error")
        try r.finish()
    }
    public var json: JSONValue {
        .object(JSONObject(["key": key?.json, "file": file?.json, "from": from.json, "dropped": dropped.json, "error": error?.json]))
    }
    public static let schema = JSONSchema.object([
        .property("key", String.self, required: false, "git-annex key (absent when the path is not an annexed file)"),
        .property("file", String.self, required: false, "The file it was asked for by, relative to the repository"),
        .property("from", String.self, "UUID of the repository dropped from"),
        .property("dropped", Bool.self, "True when the content was removed (and the location log says so)"),
        .property("error", TransferFailure.self, required: false,
                  "Why not: unsafe_drop (not enough copies verified and locked; the message names each copy and what became of it), not_present (nothing to drop there), not_annexed, content_locked (in use here: a transfer or a peer's lock), peer_unreachable, auth_failed, peer_refused, protocol_error, io_error"),
    ])
}
