/// Result and parameter types of annexd's RPC methods, shared by the daemon
/// and its clients (annex-cli). Field names are the stable API.

/// A repository annexd serves.
public struct RepoInfo: RPCResultConvertible, Equatable {
    public var uuid: String
    public var path: String
    public var bare: Bool
    /// The onion address this repository is (or will be) served on.
    public var onion: String
    public var port: Int
    /// `tor-annex::ONION:PORT`, as git-annex names it.
    public var address: String
    /// The unix socket annexd's P2P listener serves, which the onion port maps to.
    public var socket: String
    public var peers: Int
    /// Its settings (repo.set), in repo.info.
    public var settings: RepoSettings?

    public init(uuid: String, path: String, bare: Bool, onion: String, port: Int, socket: String, peers: Int,
                settings: RepoSettings? = nil) {
        self.uuid = uuid
        self.path = path
        self.bare = bare
        self.onion = onion
        self.port = port
        self.address = "\(TorAnnexAddress.scheme)\(onion):\(port)"
        self.socket = socket
        self.peers = peers
        self.settings = settings
    }

    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        uuid = try r.required("uuid")
        path = try r.required("path")
        bare = try r.required("bare")
        onion = try r.required("onion")
        port = try r.required("port")
        address = try r.required("address")
        socket = try r.required("socket")
        peers = try r.required("peers")
        settings = try r.optional("settings")
        try r.finish()
    }

    public var json: JSONValue {
        .object(JSONObject(["uuid": uuid.json, "path": path.json, "bare": bare.json, "onion": onion.json, "port": port.json,
                            "address": address.json, "socket": socket.json, "peers": peers.json, "settings": settings?.json]))
    }

    public static let schema = JSONSchema.object([
        .property("uuid", String.self, "git-annex UUID of the repository"),
        .property("path", String.self, "Absolute path of the repository"),
        .property("bare", Bool.self),
        .property("onion", String.self, "v3 onion address, derived from annexd's key for this repository"),
        .property("port", Int.self, "Onion virtual port"),
        .property("address", String.self, "tor-annex::ONION:PORT"),
        .property("socket", String.self, "Unix socket of the P2P listener"),
        .property("peers", Int.self, "Number of peers invited or linked"),
        .property("settings", RepoSettings.self, required: false, "Its settings (repo.set): in repo.info (reading them runs git, so repo.list leaves them out)"),
    ])
}

/// A peer of a repository: someone invited (holding a token this repository accepts).
public struct PeerInfo: RPCResultConvertible, Equatable {
    public var name: String
    public var access: String
    public var created: Double

    public init(name: String, access: String, created: Double) {
        self.name = name
        self.access = access
        self.created = created
    }

    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        name = try r.required("name")
        access = try r.required("access")
        created = try r.required("created")
        try r.finish()
    }

    public var json: JSONValue { .object(["name": name.json, "access": access.json, "created": created.json]) }

    public static let schema = JSONSchema.object([
        .property("name", String.self),
        .property("access", schema: JSONSchema.stringEnum(["read-write", "read-only"])),
        .property("created", Double.self, "Unix time the invitation was made"),
    ])
}

public struct DaemonStatus: RPCResultConvertible, Equatable {
    public var version: String
    public var pid: Int
    public var boot: String
    public var uptime: Double
    public var stateDir: String
    public var socket: String
    public var tor: String
    public var repos: Int
    public var connections: Int
    public var latestEvent: Int

    public init(version: String, pid: Int, boot: String, uptime: Double, stateDir: String, socket: String,
                tor: String, repos: Int, connections: Int, latestEvent: Int) {
        self.version = version; self.pid = pid; self.boot = boot; self.uptime = uptime
        self.stateDir = stateDir; self.socket = socket; self.tor = tor; self.repos = repos
        self.connections = connections; self.latestEvent = latestEvent
    }

    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        version = try r.required("version")
        pid = try r.required("pid")
        boot = try r.required("boot")
        uptime = try r.required("uptime")
        stateDir = try r.required("state_dir")
        socket = try r.required("socket")
        tor = try r.required("tor")
        repos = try r.required("repos")
        connections = try r.required("connections")
        latestEvent = try r.required("latest_event")
        try r.finish()
    }

    public var json: JSONValue {
        .object(["version": version.json, "pid": pid.json, "boot": boot.json, "uptime": uptime.json,
                 "state_dir": stateDir.json, "socket": socket.json, "tor": tor.json, "repos": repos.json,
                 "connections": connections.json, "latest_event": latestEvent.json])
    }

    public static let schema = JSONSchema.object([
        .property("version", String.self), .property("pid", Int.self),
        .property("boot", String.self, "Boot id: event ids count from 1 within one boot"),
        .property("uptime", Double.self, "Seconds since the daemon started"),
        .property("state_dir", String.self), .property("socket", String.self, "RPC socket path"),
        .property("tor", String.self, "How onion services are provided (none, system, own)"),
        .property("repos", Int.self), .property("connections", Int.self, "Open P2P connections"),
        .property("latest_event", Int.self, "Id of the newest event"),
    ])
}

/// `{ "repo": PATH-OR-UUID }`: which registered repository a method acts on.
public struct RepoSelector: RPCParams, Equatable {
    public var repo: String
    public init(repo: String) { self.repo = repo }
    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        repo = try r.required("repo")
        try r.finish()
    }
    public var json: JSONValue { .object(["repo": repo.json]) }
    public static let schema = JSONSchema.object([
        .property("repo", String.self, "Path (or UUID) of a registered repository"),
    ])
}
