/// RPC methods and types of the tor manager (`tor.*`).

public enum TorStatusMethod: RPCMethod {
    public static let method = "tor.status"
    public static let summary = "Which tor annexd uses (system, own or none), its bootstrap progress and SOCKS port, and the state of every repository's onion"
    public typealias Result = TorStatus
}

/// What `tor.status` answers.
public struct TorStatus: RPCResultConvertible, Equatable {
    /// One repository's onion service.
    public struct Onion: RPCResultConvertible, Equatable {
        public var repo: String
        public var uuid: String
        public var onion: String
        public var port: Int
        public var state: String
        public var error: String?
        public init(repo: String, uuid: String, onion: String, port: Int, state: String, error: String?) {
            self.repo = repo; self.uuid = uuid; self.onion = onion; self.port = port; self.state = state; self.error = error
        }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            repo = try r.required("repo")
            uuid = try r.required("uuid")
            onion = try r.required("onion")
            port = try r.required("port")
            state = try r.required("state")
            error = try r.optional("error")
            try r.finish()
        }
        public var json: JSONValue {
            .object(JSONObject(["repo": repo.json, "uuid": uuid.json, "onion": onion.json, "port": port.json,
                                "state": state.json, "error": error?.json]))
        }
        public static let schema = JSONSchema.object([
            .property("repo", String.self), .property("uuid", String.self),
            .property("onion", String.self, "v3 onion address"), .property("port", Int.self, "Onion virtual port"),
            .property("state", String.self, "waiting (no tor yet), added (descriptor not yet uploaded), published (reachable) or failed"),
            .property("error", String.self, required: false, "Why it failed"),
        ])
    }

    public var mode: String
    public var using: String
    public var control: String?
    public var socks: String?
    /// Process id of annexd's own tor, when that is the one in use.
    public var pid: Int?
    public var bootstrapProgress: Int
    public var bootstrapSummary: String
    public var warning: String?
    public var error: String?
    public var onions: [Onion]

    public init(mode: String, using: String, control: String?, socks: String?, pid: Int? = nil, bootstrapProgress: Int,
                bootstrapSummary: String, warning: String?, error: String?, onions: [Onion]) {
        self.mode = mode; self.using = using; self.control = control; self.socks = socks; self.pid = pid
        self.bootstrapProgress = bootstrapProgress; self.bootstrapSummary = bootstrapSummary
        self.warning = warning; self.error = error; self.onions = onions
    }

    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        mode = try r.required("mode")
        using = try r.required("using")
        control = try r.optional("control")
        socks = try r.optional("socks")
        pid = try r.optional("pid")
        bootstrapProgress = try r.required("bootstrap_progress")
        bootstrapSummary = try r.required("bootstrap_summary")
        warning = try r.optional("warning")
        error = try r.optional("error")
        onions = try r.required("onions")
        try r.finish()
    }

    public var json: JSONValue {
        .object(JSONObject(["mode": mode.json, "using": using.json, "control": control?.json, "socks": socks?.json, "pid": pid?.json,
                            "bootstrap_progress": bootstrapProgress.json, "bootstrap_summary": bootstrapSummary.json,
                            "warning": warning?.json, "error": error?.json, "onions": onions.json]))
    }

    public static let schema = JSONSchema.object([
        .property("mode", String.self, "What --tor asked for: auto, system, own or none"),
        .property("using", String.self, "What is in use: system, own, none, connecting or unavailable"),
        .property("control", String.self, required: false, "The control connection in use"),
        .property("socks", String.self, required: false, "HOST:PORT of the tor's SOCKS listener, used for peers"),
        .property("pid", Int.self, required: false, "Process id of annexd's own tor, when that is the one in use"),
        .property("bootstrap_progress", Int.self, "Tor's bootstrap progress, 0-100"),
        .property("bootstrap_summary", String.self),
        .property("warning", String.self, required: false, "Something the user should know (e.g. SOCKS port 9050 was taken)"),
        .property("error", String.self, required: false, "Why tor is not available, and what to do"),
        .property("onions", [Onion].self),
    ])
}

public enum TorEnableSystem: RPCMethod {
    public static let method = "tor.enableSystem"
    public static let summary = "Set up the system tor as root through annex-tor-helper (pkexec, else sudo): with repo, a hidden service in git annex enable-tor's layout, which annexd then serves; without, a group-readable control socket, so --tor system works from then on"
    public struct Params: RPCParams, Equatable {
        public var repo: String?
        public var group: String?
        public init(repo: String? = nil, group: String? = nil) { self.repo = repo; self.group = group }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            repo = try r.optional("repo")
            group = try r.optional("group")
            try r.finish()
        }
        public var json: JSONValue { .object(JSONObject(["repo": repo?.json, "group": group?.json])) }
        public static let schema = JSONSchema.object([
            .property("repo", String.self, required: false, "Path (or UUID) of a registered repository: add its hidden service to the system torrc"),
            .property("group", String.self, required: false, "Without repo: tor's group, which gets the control socket (default: the group of /var/lib/tor)"),
        ])
    }
    public struct Result: RPCResultConvertible, Equatable {
        public var action: String
        public var changed: Bool
        public var onion: String?
        public var port: Int?
        public var socket: String?
        public var message: String
        public init(action: String, changed: Bool, onion: String?, port: Int?, socket: String?, message: String) {
            self.action = action; self.changed = changed; self.onion = onion; self.port = port; self.socket = socket; self.message = message
        }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            action = try r.required("action")
            changed = try r.required("changed")
            onion = try r.optional("onion")
            port = try r.optional("port")
            socket = try r.optional("socket")
            message = try r.required("message")
            try r.finish()
        }
        public var json: JSONValue {
            .object(JSONObject(["action": action.json, "changed": changed.json, "onion": onion?.json, "port": port?.json,
                                "socket": socket?.json, "message": message.json]))
        }
        public static let schema = JSONSchema.object([
            .property("action", String.self, "add-hidden-service or enable-control-socket"),
            .property("changed", Bool.self, "false when the torrc already had it"),
            .property("onion", String.self, required: false, "The repository's onion address (system tor's)"),
            .property("port", Int.self, required: false, "Its virtual port"),
            .property("socket", String.self, required: false, "The unix socket tor forwards to (annexd listens there)"),
            .property("message", String.self, "What happened and what comes next"),
        ])
    }
}
