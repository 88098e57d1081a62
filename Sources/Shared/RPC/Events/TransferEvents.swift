// Events about transfers the daemon owns (transfer.start): each carries the whole transfer object.

/// transfer.queued, .started, .paused, .resumed, .finished, .failed, .canceled.
public struct TransferEvent<Kind: EventKind>: RepoEvent {
    public static var type: String { Kind.type }
    public static var summary: String { Kind.summary }
    public static var fields: [EventField<Self>] {
        [.init("transfer", \.transfer, "The transfer, as transfer.get returns it")]
    }
    public var repo: EventRepo
    public var transfer: TransferInfo
    public init(repo: EventRepo, transfer: TransferInfo) {
        self.repo = repo
        self.transfer = transfer
    }
}

public enum TransferWasQueued: EventKind {
    public static let type = "transfer.queued"
    public static let summary = "A transfer was queued (transfer.start, or brought back after a restart)"
}
public enum TransferDidStart: EventKind {
    public static let type = "transfer.started"
    public static let summary = "An attempt of a transfer started: the peer is being reached"
}
public enum TransferWasPaused: EventKind {
    public static let type = "transfer.paused"
    public static let summary = "A transfer was paused (transfer.pause); a get keeps its partial"
}
public enum TransferWasResumed: EventKind {
    public static let type = "transfer.resumed"
    public static let summary = "A transfer was queued again: a paused one (transfer.resume), or a failed or canceled one (transfer.retry, attempt back to 0)"
}
public enum TransferDidFinish: EventKind {
    public static let type = "transfer.finished"
    public static let summary = "A transfer is done: the content is verified and in place, and the location log says so"
}
public enum TransferDidFail: EventKind {
    public static let type = "transfer.failed"
    public static let summary = "An attempt failed (error says why); next_retry says when the next starts, absent when no more will"
}
public enum TransferWasCanceled: EventKind {
    public static let type = "transfer.canceled"
    public static let summary = "A transfer was canceled (transfer.cancel)"
}
public typealias TransferQueued = TransferEvent<TransferWasQueued>
public typealias TransferStarted = TransferEvent<TransferDidStart>
public typealias TransferPaused = TransferEvent<TransferWasPaused>
public typealias TransferResumed = TransferEvent<TransferWasResumed>
public typealias TransferFinished = TransferEvent<TransferDidFinish>
public typealias TransferFailed = TransferEvent<TransferDidFail>
public typealias TransferCanceled = TransferEvent<TransferWasCanceled>

/// A snapshot of a repository's active transfers: at most once a second, only while bytes move.
public struct TransferProgress: RepoEvent {
    public static let type = "transfer.progress"
    public static let summary = "Progress of a repository's active transfers, at most once a second and only while bytes move"
    public static let fields: [EventField<Self>] = [
        .init("transfers", \.transfers, "Every active transfer of the repository, with bytes, rate and eta"),
    ]
    public var repo: EventRepo
    public var transfers: [TransferInfo]
    public init(repo: EventRepo, transfers: [TransferInfo]) {
        self.repo = repo
        self.transfers = transfers
    }
}
