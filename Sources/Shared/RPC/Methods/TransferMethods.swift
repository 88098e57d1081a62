/// Transfers owned by the daemon: start, watch, pause, resume, cancel and retry them.

public enum TransferStart: RPCMethod {
    public static let method = "transfer.start"
    public static let summary = "Queue gets (from peers to here) or puts (from here to a peer) of annexed files or keys; returns the transfers (asking again for one already queued returns it)"
    public struct Params: RPCParams, Equatable {
        public var repo: String
        public var direction: TransferDirection
        /// Files or directories, relative to the repository (or absolute inside it).
        public var paths: [String]?
        public var keys: [String]?
        /// A get: only from this peer; a put: to this peer (required). A remote name or UUID.
        public var peer: String?
        public init(repo: String, direction: TransferDirection, paths: [String]? = nil, keys: [String]? = nil, peer: String? = nil) {
            self.repo = repo; self.direction = direction; self.paths = paths; self.keys = keys; self.peer = peer
        }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            repo = try r.required("repo")
            direction = try r.required("direction")
            paths = try r.optional("paths")
            keys = try r.optional("keys")
            peer = try r.optional("peer")
            try r.finish()
            if (paths ?? []).isEmpty && (keys ?? []).isEmpty {
                throw RPCError.invalidParams(reason: "nothing_to_transfer", "params: give paths or keys (or both), at least one")
            }
            if direction == .put && peer == nil {
                throw RPCError.invalidParams(reason: "peer_required", "params.peer: a put needs the peer to put to (a remote name or UUID)")
            }
        }
        public var json: JSONValue {
            .object(JSONObject(["repo": repo.json, "direction": direction.json, "paths": paths?.json, "keys": keys?.json, "peer": peer?.json]))
        }
        public static let schema = JSONSchema.object([
            .property("repo", String.self, "Path (or UUID) of a registered repository"),
            .property("direction", TransferDirection.self, "get: from peers to here; put: from here to `peer`"),
            .property("paths", [String].self, required: false, "Annexed files or directories, relative to the repository"),
            .property("keys", [String].self, required: false, "git-annex keys"),
            .property("peer", String.self, required: false, "Remote name or UUID: the only source of a get; the destination of a put (required)"),
        ])
    }
    public typealias Result = TransferListResult
}

/// A page of transfers.
public struct TransferListResult: RPCResultConvertible, Equatable {
    public var transfers: [TransferInfo]
    /// How many matched in all (the page may hold fewer).
    public var total: Int
    public init(transfers: [TransferInfo], total: Int) { self.transfers = transfers; self.total = total }
    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        transfers = try r.required("transfers")
        total = try r.required("total")
        try r.finish()
    }
    public var json: JSONValue { .object(["transfers": transfers.json, "total": total.json]) }
    public static let schema = JSONSchema.object([
        .property("transfers", [TransferInfo].self),
        .property("total", Int.self, "How many matched in all"),
    ])
}

public enum TransferList: RPCMethod {
    public static let method = "transfer.list"
    public static let summary = "Transfers, oldest first, optionally of one repository and in some states"
    public struct Params: RPCParams, Equatable {
        public var repo: String?
        public var states: [TransferState]?
        public var offset: Int
        public var limit: Int
        public init(repo: String? = nil, states: [TransferState]? = nil, offset: Int = 0, limit: Int = 1000) {
            self.repo = repo; self.states = states; self.offset = offset; self.limit = limit
        }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            repo = try r.optional("repo")
            states = try r.optional("states")
            offset = try r.optional("offset", default: 0)
            limit = try r.optional("limit", default: 1000)
            try r.finish()
            guard offset >= 0 else { throw RPCError.invalidParams(reason: "invalid_offset", "params.offset: must be 0 or more") }
            guard (1...10_000).contains(limit) else { throw RPCError.invalidParams(reason: "invalid_limit", "params.limit: between 1 and 10000") }
        }
        public var json: JSONValue {
            .object(JSONObject(["repo": repo?.json, "states": states?.json, "offset": offset.json, "limit": limit.json]))
        }
        public static let schema = JSONSchema.object([
            .property("repo", String.self, required: false, "Only this repository (path or UUID)"),
            .property("states", [TransferState].self, required: false, "Only transfers in these states"),
            .property("offset", Int.self, required: false, "Skip this many (default 0)"),
            .property("limit", Int.self, required: false, "At most this many (default 1000, at most 10000)"),
        ])
    }
    public typealias Result = TransferListResult
}

public enum TransferGet: RPCMethod {
    public static let method = "transfer.get"
    public static let summary = "One transfer"
    public struct Params: RPCParams, Equatable {
        public var id: String
        public init(id: String) { self.id = id }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            id = try r.required("id")
            try r.finish()
        }
        public var json: JSONValue { .object(["id": id.json]) }
        public static let schema = JSONSchema.object([.property("id", String.self, "A transfer id")])
    }
    public typealias Result = TransferInfo
}

/// Which transfers an action applies to: some ids, or all (of one repository).
public struct TransferSelection: RPCParams, Equatable {
    public var ids: [String]?
    public var all: Bool
    public var repo: String?
    public init(ids: [String]? = nil, all: Bool = false, repo: String? = nil) { self.ids = ids; self.all = all; self.repo = repo }
    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        ids = try r.optional("ids")
        all = try r.optional("all", default: false)
        repo = try r.optional("repo")
        try r.finish()
        if all == ((ids ?? []).isEmpty == false) {
            throw RPCError.invalidParams(reason: "invalid_selection", "params: give either ids (at least one) or all: true")
        }
    }
    public var json: JSONValue { .object(JSONObject(["ids": ids?.json, "all": all ? true.json : nil, "repo": repo?.json])) }
    public static let schema = JSONSchema.object([
        .property("ids", [String].self, required: false, "Transfer ids"),
        .property("all", Bool.self, required: false, "Every transfer the action applies to"),
        .property("repo", String.self, required: false, "With all: only this repository's"),
    ])
}

/// The transfers an action changed.
public typealias TransferActionResult = TransferListResult

public enum TransferPause: RPCMethod {
    public static let method = "transfer.pause"
    public static let summary = "Pause queued or active transfers (an active one stops and keeps its partial)"
    public typealias Params = TransferSelection
    public typealias Result = TransferActionResult
}

public enum TransferResume: RPCMethod {
    public static let method = "transfer.resume"
    public static let summary = "Queue paused transfers again (they resume from their partials)"
    public typealias Params = TransferSelection
    public typealias Result = TransferActionResult
}

public enum TransferCancel: RPCMethod {
    public static let method = "transfer.cancel"
    public static let summary = "Cancel transfers that are not finished (a get keeps its partial, so asking again resumes)"
    public typealias Params = TransferSelection
    public typealias Result = TransferActionResult
}

public enum TransferRetry: RPCMethod {
    public static let method = "transfer.retry"
    public static let summary = "Queue failed or canceled transfers again, now"
    public typealias Params = TransferSelection
    public typealias Result = TransferActionResult
}
