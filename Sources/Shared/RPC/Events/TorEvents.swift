// Tor and onion services.

public struct TorConnected: AnnexdEvent {
    public static let type = "tor.connected"
    public static let summary = "annexd has a control connection to tor"
    public static let fields: [EventField<Self>] = [
        .init("kind", \.kind, "system or own"),
        .init("control", \.control, "The control endpoint (and, for its own tor, pid and torrc)"),
        .init("socks", \.socks, "HOST:PORT of tor's SOCKS port, or null"),
    ]
    public var kind: String
    public var control: String
    public var socks: String?
    public init(kind: String, control: String, socks: String?) {
        self.kind = kind
        self.control = control
        self.socks = socks
    }
}

public struct TorDisconnected: AnnexdEvent {
    public static let type = "tor.disconnected"
    public static let summary = "The control connection to tor was lost or could not be made; annexd retries"
    public static let fields: [EventField<Self>] = [
        .init("error", \.error, "Why"),
        .init("retry_in", \.retryIn, "Seconds until the next try"),
    ]
    public var error: String
    public var retryIn: Double
    public init(error: String, retryIn: Double) {
        self.error = error
        self.retryIn = retryIn
    }
}

public struct TorBootstrap: AnnexdEvent {
    public static let type = "tor.bootstrap"
    public static let summary = "tor's bootstrap progress changed, with tor's own warning when it is stuck"
    public static let fields: [EventField<Self>] = [
        .init("progress", \.progress, "Percent, 0 to 100"),
        .init("tag", \.tag, "tor's phase tag, e.g. conn_done"),
        .init("summary", \.summary, "tor's description of the phase"),
        .init("warning", \.warning, "tor's WARNING, or null"),
        .init("recommendation", \.recommendation, "tor's RECOMMENDATION (ignore, warn), or null"),
    ]
    public var progress: Int
    public var tag: String
    public var summary: String
    public var warning: String?
    public var recommendation: String?
    public init(progress: Int, tag: String, summary: String, warning: String?, recommendation: String?) {
        self.progress = progress
        self.tag = tag
        self.summary = summary
        self.warning = warning
        self.recommendation = recommendation
    }
}

public struct TorControlSocketEnabled: AnnexdEvent {
    public static let type = "tor.control_socket_enabled"
    public static let summary = "annex-tor-helper gave system tor a control socket for a group (tor.enableSystem without repo)"
    public static let fields: [EventField<Self>] = [
        .init("socket", \.socket, "The control socket's path"),
        .init("group", \.group, "The group that may use it"),
    ]
    public var socket: String
    public var group: String
    public init(socket: String, group: String) {
        self.socket = socket
        self.group = group
    }
}

public struct TorHiddenServiceEnabled: RepoEvent {
    public static let type = "tor.hidden_service_enabled"
    public static let summary = "annex-tor-helper added a repository's hidden service to the system torrc, as git annex enable-tor does; annexd serves it"
    public static let fields: [EventField<Self>] = [
        .init("onion", \.onion, "The onion system tor publishes"),
        .init("port", \.port, "Its virtual port"),
    ]
    public var repo: EventRepo
    public var onion: String
    public var port: Int
    public init(repo: EventRepo, onion: String, port: Int) {
        self.repo = repo
        self.onion = onion
        self.port = port
    }
}

public struct OnionReady: RepoEvent {
    public static let type = "onion.ready"
    public static let summary = "A repository's onion service descriptor was published: peers can reach it"
    public static let fields: [EventField<Self>] = [
        .init("onion", \.onion, "The onion address"),
        .init("seconds", \.seconds, "Seconds from ADD_ONION to publication"),
    ]
    public var repo: EventRepo
    public var onion: String
    public var seconds: Double
    public init(repo: EventRepo, onion: String, seconds: Double) {
        self.repo = repo
        self.onion = onion
        self.seconds = seconds
    }
}

public struct OnionFailed: RepoEvent {
    public static let type = "onion.failed"
    public static let summary = "tor refused a repository's onion service"
    public static let fields: [EventField<Self>] = [
        .init("onion", \.onion, "The onion address"),
        .init("error", \.error, "tor's answer"),
    ]
    public var repo: EventRepo
    public var onion: String
    public var error: String
    public init(repo: EventRepo, onion: String, error: String) {
        self.repo = repo
        self.onion = onion
        self.error = error
    }
}
