// Pairing (pair.start / pair.submit), as `git annex p2p --pair`.

public struct PairCode: RepoEvent {
    public static let type = "pair.code"
    public static let summary = "A pairing has its code: show it to the person at the other repository"
    public static let fields: [EventField<Self>] = [
        .init("pairing", \.pairing, "The pairing's id (pair.submit, pair.cancel)"),
        .init("name", \.name, "The name the other repository will get here"),
        .init("code", \.code, "The wormhole code, e.g. 7-guitarist-revenge"),
    ]
    public var repo: EventRepo
    public var pairing: String
    public var name: String
    public var code: String
    public init(repo: EventRepo, pairing: String, name: String, code: String) {
        self.repo = repo
        self.pairing = pairing
        self.name = name
        self.code = code
    }
}

public struct PairProgress: RepoEvent {
    public static let type = "pair.progress"
    public static let summary = "A pairing moved on (exchanging, exchanged, retrying)"
    public static let fields: [EventField<Self>] = [
        .init("pairing", \.pairing, "The pairing's id"),
        .init("stage", \.stage, "exchanging, exchanged or retrying"),
        .init("message", \.message, "What is happening, for people"),
    ]
    public var repo: EventRepo
    public var pairing: String
    public var stage: String
    public var message: String
    public init(repo: EventRepo, pairing: String, stage: String, message: String) {
        self.repo = repo
        self.pairing = pairing
        self.stage = stage
        self.message = message
    }
}

public struct PairSucceeded: RepoEvent {
    public static let type = "pair.succeeded"
    public static let summary = "A pairing finished: each side accepts the other, and the remote is linked"
    public static let fields: [EventField<Self>] = [
        .init("pairing", \.pairing, "The pairing's id"),
        .init("remote", \.remote, "The git remote's name"),
        .init("remote_uuid", \.remoteUUID, "The other repository's UUID"),
        .init("address", \.address, "tor-annex::ONION:PORT of the other repository"),
    ]
    public var repo: EventRepo
    public var pairing: String
    public var remote: String
    public var remoteUUID: String
    public var address: String
    public init(repo: EventRepo, pairing: String, remote: String, remoteUUID: String, address: String) {
        self.repo = repo
        self.pairing = pairing
        self.remote = remote
        self.remoteUUID = remoteUUID
        self.address = address
    }
}

public struct PairFailed: RepoEvent {
    public static let type = "pair.failed"
    public static let summary = "A pairing failed or was cancelled; nothing was kept"
    public static let fields: [EventField<Self>] = [
        .init("pairing", \.pairing, "The pairing's id"),
        .init("reason", \.reason, "wrong_code, crowded, timeout, cancelled, mailbox_unreachable, link_failed, …"),
        .init("error", \.error, "What went wrong and what to do"),
    ]
    public var repo: EventRepo
    public var pairing: String
    public var reason: String
    public var error: String
    public init(repo: EventRepo, pairing: String, reason: String, error: String) {
        self.repo = repo
        self.pairing = pairing
        self.reason = reason
        self.error = error
    }
}
