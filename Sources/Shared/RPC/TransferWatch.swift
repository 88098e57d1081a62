/// What a client (annex-cli) knows about transfers it watches, kept up to date from the
/// transfer.* events; pure: it is fed event params and answers what changed and how it ended.

extension TransferInfo {
    /// Nothing more will happen to it unless someone asks (transfer.retry): done, canceled,
    /// or failed with no retry planned. A failure with `next_retry` is not settled.
    public var isSettled: Bool {
        switch state {
        case .done, .canceled: return true
        case .failed: return nextRetry == nil
        default: return false
        }
    }
}

public struct TransferWatch: Sendable, Equatable {
    /// The transfer.* event types a watch needs.
    public static let eventTypes: [String] = [
        TransferQueued.type, TransferStarted.type, TransferProgress.type, TransferPaused.type,
        TransferResumed.type, TransferFinished.type, TransferFailed.type, TransferCanceled.type,
    ]

    /// The watched transfers' ids, in the order first seen.
    public private(set) var ids: [String] = []
    public private(set) var transfers: [String: TransferInfo] = [:]
    /// Which transfers not yet watched are taken in when an event names them: none (get and
    /// copy watch only theirs), all, or those of one repository (`annex-cli transfers --follow`).
    public enum Adoption: Sendable, Equatable {
        case none, all
        /// The repository's path, as the daemon gives it (`TransferInfo.repo`).
        case repo(String)

        func adopts(_ t: TransferInfo) -> Bool {
            switch self {
            case .none: return false
            case .all: return true
            case .repo(let path): return t.repo == path
            }
        }
    }
    public let adoption: Adoption

    public init(_ transfers: [TransferInfo] = [], adopting adoption: Adoption = .none) {
        self.adoption = adoption
        for t in transfers where self.transfers[t.id] == nil {
            ids.append(t.id)
            self.transfers[t.id] = t
        }
    }

    /// The watched transfers in order.
    public var all: [TransferInfo] { ids.compactMap { transfers[$0] } }

    /// Every watched transfer is settled (also true when there are none).
    public var isSettled: Bool { all.allSatisfy(\.isSettled) }

    /// The transfers one event's params carry (`transfer`, or `transfers` for transfer.progress);
    /// empty for other events.
    public static func transfers(inEvent params: JSONValue) throws -> [TransferInfo] {
        if let one = params["transfer"] { return [try TransferInfo(json: one, path: "params.transfer")] }
        if let many = params["transfers"] { return try [TransferInfo](json: many, path: "params.transfers") }
        return []
    }

    /// Whether an event's params concern a watched transfer.
    public func concerns(event params: JSONValue) -> Bool {
        ((try? Self.transfers(inEvent: params)) ?? []).contains { transfers[$0.id] != nil || adoption.adopts($0) }
    }

    /// Applies an event's params; returns the transfers whose state changed (worth a line).
    public mutating func apply(event params: JSONValue) throws -> [TransferInfo] {
        try Self.transfers(inEvent: params).filter { update($0) }
    }

    /// What one notification means to a client following transfers (subscribed to
    /// `eventTypes` and daemon.stopping).
    public enum Step: Equatable, Sendable {
        /// A transfer event: its params as is, and the watched transfers whose state changed.
        case event(JSONValue, changed: [TransferInfo])
        /// The client fell behind: resubscribe with `since: resumeFrom` to continue.
        case overflow(resumeFrom: Int)
        case daemonStopping
        /// Nothing about transfers (the snapshot, other notifications).
        case other
    }

    /// A transfer event this client cannot read (a daemon of another version).
    public struct UnreadableEvent: Error, CustomStringConvertible {
        public let type: String
        public let problem: String
        public var description: String {
            "annexd sent a \(type) event annex-cli cannot read (\(problem)); are annexd and annex-cli the same version?"
        }
    }

    /// Takes in one notification.
    public mutating func take(_ n: RPCNotification) throws -> Step {
        if n.method == "event.overflow" {
            return .overflow(resumeFrom: Int(n.params?["resume_from"]?.intValue ?? 0))
        }
        guard n.method == "event", let params = n.params, let type = params["type"]?.stringValue else { return .other }
        if type == DaemonStopping.type { return .daemonStopping }
        guard type.hasPrefix("transfer.") else { return .other }
        do { return .event(params, changed: try apply(event: params)) } catch {
            throw UnreadableEvent(type: type, problem: "\(error)")
        }
    }

    /// Takes in a newer view of a transfer; true when its state changed (a new state, a new
    /// attempt, or a retry planned or dropped). Events may arrive after the answer that already
    /// reflects them, so a settled transfer does not go back to an unsettled state of the same
    /// attempt or an earlier one.
    @discardableResult
    public mutating func update(_ new: TransferInfo) -> Bool {
        guard let old = transfers[new.id] else {
            guard adoption.adopts(new) else { return false }
            ids.append(new.id)
            transfers[new.id] = new
            return true
        }
        if old.isSettled && !new.isSettled && new.attempt <= old.attempt { return false }
        transfers[new.id] = new
        return old.state != new.state || old.attempt != new.attempt || (old.nextRetry == nil) != (new.nextRetry == nil)
    }

    /// How the watched transfers ended (or stand).
    public var outcome: Outcome { Outcome(all) }

    /// Done, failed and canceled transfers, and what that means for the exit status.
    public struct Outcome: Sendable, Equatable {
        public var done: [TransferInfo] = []
        public var failed: [TransferInfo] = []
        public var canceled: [TransferInfo] = []
        /// Not settled yet.
        public var pending: [TransferInfo] = []

        public init(_ transfers: [TransferInfo]) {
            for t in transfers {
                switch t.state {
                case .done: done.append(t)
                case .canceled: canceled.append(t)
                case .failed where t.nextRetry == nil: failed.append(t)
                default: pending.append(t)
                }
            }
        }

        /// Every transfer is done (nothing failed, was canceled, or is still pending).
        public var succeeded: Bool { failed.isEmpty && canceled.isEmpty && pending.isEmpty }
        public var exitStatus: Int32 { succeeded ? 0 : 1 }

        /// `{"summary": {ok, done, failed, canceled, pending, transfers}}`: the last line of --json.
        public var json: JSONValue {
            .object(["summary": .object([
                "ok": .bool(succeeded), "done": .int(Int64(done.count)), "failed": .int(Int64(failed.count)),
                "canceled": .int(Int64(canceled.count)), "pending": .int(Int64(pending.count)),
                "transfers": (done + failed + canceled + pending).json,
            ])])
        }
    }
}
