// The daemon's and repositories' events.

public struct DaemonStopping: AnnexdEvent {
    public static let type = "daemon.stopping"
    public static let summary = "The daemon is shutting down (SIGTERM or daemon.shutdown)"
    public static let fields: [EventField<Self>] = []
    public init() {}
}

/// Not kept in the log: the first notification of a subscription without `since` (its id
/// is the latest event's, so a client resumes from there).
public struct EventSnapshot: AnnexdEvent {
    public static let type = "snapshot"
    public static let summary = "The current state, sent first to a subscription without since; then come changes"
    public static let fields: [EventField<Self>] = [
        .init("repos", \.repos, "Every repository served, as repo.list gives them"),
        .init("connections", \.connections, "P2P connections open now"),
    ]
    public var repos: [RepoInfo]
    public var connections: Int
    public init(repos: [RepoInfo], connections: Int) {
        self.repos = repos
        self.connections = connections
    }
}

public struct RepoAdded: RepoEvent {
    public static let type = "repo.added"
    public static let summary = "A repository was registered and is served"
    public static let fields: [EventField<Self>] = [
        .init("bare", \.bare, "Whether it is a bare repository"),
        .init("address", \.address, "tor-annex::ONION:PORT it is served at"),
        .init("socket", \.socket, "Unix socket of its P2P listener"),
    ]
    public var repo: EventRepo
    public var bare: Bool
    public var address: String
    public var socket: String
    public init(_ info: RepoInfo) {
        repo = EventRepo(path: info.path, uuid: info.uuid)
        bare = info.bare
        address = info.address
        socket = info.socket
    }
}

public struct RepoRemoved: RepoEvent {
    public static let type = "repo.removed"
    public static let summary = "A repository is no longer served (its onion is withdrawn)"
    public static let fields: [EventField<Self>] = []
    public var repo: EventRepo
    public init(repo: EventRepo) { self.repo = repo }
}

public struct RepoFailed: RepoEvent {
    public static let type = "repo.failed"
    public static let summary = "A registered repository cannot be served (at start-up)"
    public static let fields: [EventField<Self>] = [.init("error", \.error, "Why, and what to do")]
    public var repo: EventRepo
    public var error: String
    public init(repo: EventRepo, error: String) {
        self.repo = repo
        self.error = error
    }
}

/// Names one event type of a family that shares its fields (`ContentEvent<ContentWasSent>`).
public protocol EventKind: Sendable {
    static var type: String { get }
    static var summary: String { get }
}

/// content.received, content.sent and content.removed: one key of one repository.
public struct ContentEvent<Kind: EventKind>: RepoEvent {
    public static var type: String { Kind.type }
    public static var summary: String { Kind.summary }
    public static var fields: [EventField<Self>] { [.init("key", \.key, "The git-annex key")] }
    public var repo: EventRepo
    public var key: String
    public init(repo: EventRepo, key: String) {
        self.repo = repo
        self.key = key
    }
}

public enum ContentWasReceived: EventKind {
    public static let type = "content.received"
    public static let summary = "A peer sent content that was verified and stored"
}
public enum ContentWasSent: EventKind {
    public static let type = "content.sent"
    public static let summary = "Content was sent to a peer"
}
public enum ContentWasRemoved: EventKind {
    public static let type = "content.removed"
    public static let summary = "A peer dropped content from this repository"
}
public typealias ContentReceived = ContentEvent<ContentWasReceived>
public typealias ContentSent = ContentEvent<ContentWasSent>
public typealias ContentRemoved = ContentEvent<ContentWasRemoved>
