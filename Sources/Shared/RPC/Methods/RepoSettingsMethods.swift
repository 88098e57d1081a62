/// Per-repository settings (repo.set, and `settings` in repo.info): whether annexd watches the
/// repository's tor-annex remotes, and whether a sync moves content too.

/// One setting in repo.set: left as it is (absent), back to its default (null), or set.
public enum RepoSettingChange: Equatable, Sendable {
    case unchanged
    case reset
    case set(Bool)

    init(_ r: inout JSONObjectReader, _ key: String, in object: JSONObject) throws {
        guard object[key] != nil else {
            _ = try r.optional(key, as: Bool.self)  // marks it known
            self = .unchanged
            return
        }
        if let b = try r.optional(key, as: Bool.self) { self = .set(b) } else { self = .reset }
    }

    var json: JSONValue? {
        switch self {
        case .unchanged: nil
        case .reset: .null
        case .set(let b): .bool(b)
        }
    }
}

/// How one tor-annex remote is watched.
public struct RemoteWatchInfo: RPCResultConvertible, Equatable {
    public var name: String
    public var uuid: String?
    public var watched: Bool
    /// Why it is not watched (`annex-ignore`, `annex-sync=false`, `watch off`); nil when it is.
    public var skipped: String?
    /// Whether its NOTIFYCHANGE connection is up now (nil when it is not watched).
    public var connected: Bool?
    public init(name: String, uuid: String?, watched: Bool, skipped: String?, connected: Bool? = nil) {
        self.name = name; self.uuid = uuid; self.watched = watched; self.skipped = skipped; self.connected = connected
    }
    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        name = try r.required("name")
        uuid = try r.optional("uuid")
        watched = try r.required("watched")
        skipped = try r.optional("skipped")
        connected = try r.optional("connected")
        try r.finish()
    }
    public var json: JSONValue {
        .object(JSONObject(["name": name.json, "uuid": uuid?.json, "watched": watched.json, "skipped": skipped?.json,
                            "connected": connected?.json]))
    }
    public static let schema = JSONSchema.object([
        .property("name", String.self, "git remote name"),
        .property("uuid", String.self, required: false, "git-annex UUID of the peer repository"),
        .property("watched", Bool.self, "Whether annexd keeps a NOTIFYCHANGE connection to it"),
        .property("skipped", String.self, required: false, "Why it is not watched: annex-ignore, annex-sync=false, or watch off"),
        .property("connected", Bool.self, required: false,
                  "Whether its NOTIFYCHANGE connection is up now (only when watched; remote.connected and remote.disconnected tell the changes)"),
    ])
}

/// A repository's effective settings.
public struct RepoSettings: RPCResultConvertible, Equatable {
    /// Watch the tor-annex remotes for changes (NOTIFYCHANGE), and sync when they change.
    public var watch: Bool
    /// A sync also gets and puts wanted content.
    public var syncContent: Bool
    /// The members set through repo.set; the others come from git config (annex.autosync,
    /// annex.synccontent) or annexd's defaults (off).
    public var set: [String]
    public var remotes: [RemoteWatchInfo]

    public init(watch: Bool = false, syncContent: Bool = false, set: [String] = [], remotes: [RemoteWatchInfo] = []) {
        self.watch = watch; self.syncContent = syncContent; self.set = set; self.remotes = remotes
    }
    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        watch = try r.required("watch")
        syncContent = try r.required("sync_content")
        set = try r.required("set")
        remotes = try r.required("remotes")
        try r.finish()
    }
    public var json: JSONValue {
        .object(["watch": watch.json, "sync_content": syncContent.json, "set": set.json, "remotes": remotes.json])
    }
    public static let members = ["watch", "sync_content"]
    public static let schema = JSONSchema.object([
        .property("watch", Bool.self, "Keep a NOTIFYCHANGE connection to each tor-annex remote and sync when one changes (default: annex.autosync in the repository's git config, else off)"),
        .property("sync_content", Bool.self, "A sync also moves wanted content (default: annex.synccontent, else off)"),
        .property("set", [String].self, "The members set through repo.set; the others come from git config or annexd's defaults"),
        .property("remotes", [RemoteWatchInfo].self, "Each tor-annex remote, and whether it is watched (remote.<name>.annex-sync=false and annex-ignore=true remotes are not)"),
    ])
}

public enum RepoSet: RPCMethod {
    public static let method = "repo.set"
    public static let summary = "Change a repository's settings (watch, sync_content): only those given; null puts one back to its default; returns them all"
    public struct Params: RPCParams, Equatable {
        public var repo: String
        public var watch: RepoSettingChange
        public var syncContent: RepoSettingChange
        public init(repo: String, watch: RepoSettingChange = .unchanged, syncContent: RepoSettingChange = .unchanged) {
            self.repo = repo; self.watch = watch; self.syncContent = syncContent
        }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            repo = try r.required("repo")
            let object = json.objectValue ?? [:]
            watch = try RepoSettingChange(&r, "watch", in: object)
            syncContent = try RepoSettingChange(&r, "sync_content", in: object)
            try r.finish()
        }
        public var json: JSONValue {
            .object(JSONObject(["repo": repo.json, "watch": watch.json, "sync_content": syncContent.json]))
        }
        public static let schema = JSONSchema.object([
            .property("repo", String.self, "Path (or UUID) of a registered repository"),
            .property("watch", Bool?.self, required: false, "true or false; null: back to the default (annex.autosync, else off)"),
            .property("sync_content", Bool?.self, required: false, "true or false; null: back to the default (annex.synccontent, else off)"),
        ])
    }
    public typealias Result = RepoSettings
}
