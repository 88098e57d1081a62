// Events of sync.run (and, later, of syncs that watching starts).

public struct SyncStarted: RepoEvent {
    public static let type = "sync.started"
    public static let summary = "A sync of a repository with its tor-annex remotes started"
    public static let fields: [EventField<Self>] = [
        .init("peers", \.peers, "Names of the remotes it syncs with"),
    ]
    public var repo: EventRepo
    public var peers: [String]
    public init(repo: EventRepo, peers: [String]) {
        self.repo = repo
        self.peers = peers
    }
}

public struct SyncFinished: RepoEvent {
    public static let type = "sync.finished"
    public static let summary = "A sync ended (a peer may have failed: see peers); gets, puts and drops count content moved (0 until content sync lands)"
    public static let fields: [EventField<Self>] = [
        .init("merged", \.merged, "Merging changed the current branch or the git-annex branch"),
        .init("gets", \.gets, "Content fetched"),
        .init("puts", \.puts, "Content sent"),
        .init("drops", \.drops, "Content dropped"),
        .init("peers", \.peers, "What happened with each remote, as sync.run returns it"),
    ]
    public var repo: EventRepo
    public var merged: Bool
    public var gets: Int
    public var puts: Int
    public var drops: Int
    public var peers: [SyncPeerResult]
    public init(repo: EventRepo, merged: Bool, gets: Int = 0, puts: Int = 0, drops: Int = 0, peers: [SyncPeerResult]) {
        self.repo = repo
        self.merged = merged
        self.gets = gets
        self.puts = puts
        self.drops = drops
        self.peers = peers
    }
}

public struct SyncFailed: RepoEvent {
    public static let type = "sync.failed"
    public static let summary = "A sync could not be done at all (the repository cannot be opened)"
    public static let fields: [EventField<Self>] = [
        .init("reason", \.reason, "What went wrong and what to do"),
    ]
    public var repo: EventRepo
    public var reason: String
    public init(repo: EventRepo, reason: String) {
        self.repo = repo
        self.reason = reason
    }
}
