// Events about watched remotes: annexd's NOTIFYCHANGE connection to each tor-annex remote of a
// repository with watching on (repo.set {watch: true}).

/// The remote an event is about: its git-annex UUID (when known) and its git remote name.
public struct WatchedPeer: RPCResultConvertible, Hashable {
    public var uuid: String?
    public var name: String
    public init(uuid: String?, name: String) { self.uuid = uuid; self.name = name }
    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        uuid = try r.optional("uuid")
        name = try r.required("name")
        try r.finish()
    }
    public var json: JSONValue { .object(JSONObject(["uuid": uuid?.json ?? .null, "name": name.json])) }
    public static let schema = JSONSchema.object([
        .property("uuid", String?.self, "The peer repository's git-annex UUID (null when git config does not say)"),
        .property("name", String.self, "The git remote's name"),
    ])
}

public struct RemoteConnected: RepoEvent {
    public static let type = "remote.connected"
    public static let summary = "annexd is watching a tor-annex remote for changes (its NOTIFYCHANGE connection is up)"
    public static let fields: [EventField<Self>] = [.init("peer", \.peer, "The remote")]
    public var repo: EventRepo
    public var peer: WatchedPeer
    public init(repo: EventRepo, peer: WatchedPeer) { self.repo = repo; self.peer = peer }
}

public struct RemoteDisconnected: RepoEvent {
    public static let type = "remote.disconnected"
    public static let summary = "A watched remote could not be reached or its connection ended; annexd tries again at next_retry"
    public static let fields: [EventField<Self>] = [
        .init("peer", \.peer, "The remote"),
        .init("reason", \.reason, "peer_unreachable, auth_failed, protocol_error, connection_lost, or stopped (watching ended: no retry)"),
        .init("message", \.message, "What happened, for people"),
        .init("next_retry", \.nextRetry, "When annexd dials it again (seconds since the Unix epoch); null when it will not"),
    ]
    public var repo: EventRepo
    public var peer: WatchedPeer
    public var reason: String
    public var message: String
    public var nextRetry: Double?
    public init(repo: EventRepo, peer: WatchedPeer, reason: String, message: String, nextRetry: Double?) {
        self.repo = repo; self.peer = peer; self.reason = reason; self.message = message; self.nextRetry = nextRetry
    }
}

public struct RemoteChanged: RepoEvent {
    public static let type = "remote.changed"
    public static let summary = "A watched remote reported something new (CHANGED); a debounced sync follows"
    public static let fields: [EventField<Self>] = [
        .init("peer", \.peer, "The remote"),
        .init("refs", \.refs, "What changed, as the remote named it: the commit SHAs its changed refs point at (annexd and git-annex)"),
    ]
    public var repo: EventRepo
    public var peer: WatchedPeer
    public var refs: [String]
    public init(repo: EventRepo, peer: WatchedPeer, refs: [String]) { self.repo = repo; self.peer = peer; self.refs = refs }
}
