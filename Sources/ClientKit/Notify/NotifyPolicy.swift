import Shared

/// What the desktop notifier shows, decided from annexd's events alone: events in (the params
/// of `event` notifications), notification intents out. Pure: no D-Bus, no socket; the time
/// is passed in, and `tick` is called now and then so quiet periods and rate limits can end.
///
/// - transfers: one progress notification per repository, updated at most every
///   `progressInterval`; finished transfers are batched until none finished for `quietPeriod`,
///   then shown once (the file's name, or "N files"), replacing the progress notification;
///   a transfer that failed for good (no retry planned) gets its own notification with the
///   reason and a Retry action (transfer.retry).
/// - pairing codes and results; peers connecting and dropping; tor's bootstrap trouble and
///   lost control connection; onions that fail to publish: each in its own slot, at most
///   one notification per slot every `flapWindow` (the latest state is shown when it ends).
public struct NotifyPolicy: Sendable {
    public struct Timing: Sendable, Equatable {
        public var progressInterval: Double
        public var quietPeriod: Double
        public var flapWindow: Double
        public init(progressInterval: Double = 5, quietPeriod: Double = 2, flapWindow: Double = 60) {
            self.progressInterval = progressInterval
            self.quietPeriod = quietPeriod
            self.flapWindow = flapWindow
        }
    }
    public let timing: Timing

    /// A repository's transfers as the notifier follows them.
    struct RepoTransfers: Sendable {
        var active: [String: TransferInfo] = [:]
        var finished: [TransferInfo] = []
        var lastFinish: Double = 0
        var progressShownAt: Double?
    }
    var repos: [String: RepoTransfers] = [:]
    /// The end of each transfer's current run already shown (or being batched): "done",
    /// "ATTEMPT#failed", …; a new run (transfer.queued or .resumed: a restart, a retry) starts afresh.
    var shownEnds: [String: String] = [:]
    /// Rate-limited slots: when one was last shown, what it showed, and what waits.
    struct Limited: Sendable {
        var shownAt: Double
        var shown: NotifyIntent
        var pending: NotifyIntent?
    }
    var limited: [NotifyIntent.Slot: Limited] = [:]
    /// Tor trouble was shown, so its end is worth a notification.
    var torTrouble = false

    public init(timing: Timing = Timing()) { self.timing = timing }

    // MARK: Events

    /// Takes in one event's params (envelope and fields).
    public mutating func take(event e: JSONValue, now: Double) -> [NotifyIntent] {
        guard let type = e["type"]?.stringValue else { return [] }
        if type.hasPrefix("transfer.") { return transferEvent(type, e, now: now) }
        return networkEvent(type, e, now: now)
    }

    /// Ends what waited: finished batches after their quiet period, rate-limited slots after their window.
    public mutating func tick(now: Double) -> [NotifyIntent] {
        var out: [NotifyIntent] = []
        for repo in repos.keys.sorted() {
            guard let r = repos[repo], !r.finished.isEmpty, now - r.lastFinish >= timing.quietPeriod else { continue }
            out.append(NotifyText.finished(r.finished, repo: repo, replaces: r.progressShownAt != nil))
            repos[repo]?.finished = []
            repos[repo]?.progressShownAt = nil
        }
        for slot in limited.keys.sorted(by: { $0.description < $1.description }) {
            guard var l = limited[slot], let p = l.pending, now - l.shownAt >= timing.flapWindow else { continue }
            l.pending = nil
            if p.summary != l.shown.summary || p.body != l.shown.body {
                out.append(p)
                l.shown = p
                l.shownAt = now
            }
            limited[slot] = l
        }
        return out
    }

    /// The earliest time `tick` has something to do, if any.
    public var nextDeadline: Double? {
        let batches = repos.values.filter { !$0.finished.isEmpty }.map { $0.lastFinish + timing.quietPeriod }
        let slots = limited.values.filter { $0.pending != nil }.map { $0.shownAt + timing.flapWindow }
        return (batches + slots).min()
    }

    // MARK: Re-read state

    /// The transfers followed as active: after missed events the shell re-reads these
    /// (transfer.get) besides the unsettled ones (transfer.list), for `reconcile`.
    public var followedTransfers: [String] { repos.values.flatMap(\.active.keys).sorted() }

    /// Takes in the transfers as they stand after events were missed (a gap, an overflow, a new
    /// boot): those followed as active that ended meanwhile are shown as if their events had
    /// come; unsettled ones are followed; settled ones never followed stay unshown (their
    /// events, if still kept, come in the replay).
    public mutating func reconcile(_ transfers: [TransferInfo], now: Double) -> [NotifyIntent] {
        var out: [NotifyIntent] = []
        for t in transfers {
            switch t.state {
            case .done, .failed, .canceled, .paused:
                if repos[t.repo]?.active[t.id] != nil { out += transferEnded(t, now: now) }
            case .queued, .active, .verifying:
                if shownEnds[t.id] == nil { repos[t.repo, default: RepoTransfers()].active[t.id] = t }
            }
        }
        return out
    }

    // MARK: Transfers

    static func endKey(_ t: TransferInfo) -> String {
        t.state == .done ? "done" : "\(t.attempt)#\(t.state.rawValue)"
    }

    private mutating func transferEvent(_ type: String, _ e: JSONValue, now: Double) -> [NotifyIntent] {
        guard let transfers = try? TransferWatch.transfers(inEvent: e) else { return [] }
        switch type {
        case TransferProgress.type:
            guard let repo = e["repo"]?.stringValue else { return [] }
            for t in transfers where shownEnds[t.id] == nil { repos[repo, default: RepoTransfers()].active[t.id] = t }
            return progress(repo: repo, now: now)
        case TransferQueued.type, TransferStarted.type, TransferResumed.type:
            for t in transfers {
                // A new run (queued again after a restart, or transfer.retry, which annexd
                // announces as transfer.resumed): its end is shown afresh.
                if type != TransferStarted.type { shownEnds[t.id] = nil }
                repos[t.repo, default: RepoTransfers()].active[t.id] = t
            }
            return []
        case TransferFinished.type, TransferFailed.type, TransferCanceled.type, TransferPaused.type:
            return transfers.flatMap { transferEnded($0, now: now) }
        default:
            return []
        }
    }

    /// A transfer stopped: finished ones join the repository's batch; a failure with no retry
    /// planned is shown now (once per attempt).
    private mutating func transferEnded(_ t: TransferInfo, now: Double) -> [NotifyIntent] {
        repos[t.repo, default: RepoTransfers()].active[t.id] = nil
        guard t.isSettled, shownEnds[t.id] != Self.endKey(t) else { return [] }
        shownEnds[t.id] = Self.endKey(t)
        switch t.state {
        case .done:
            repos[t.repo]?.finished.append(t)
            repos[t.repo]?.lastFinish = now
            return []
        case .failed:
            return [NotifyText.failed(t)]
        default:
            return []
        }
    }

    /// The repository's progress notification, unless it was updated less than `progressInterval` ago.
    private mutating func progress(repo: String, now: Double) -> [NotifyIntent] {
        guard let r = repos[repo], !r.active.isEmpty else { return [] }
        if let shown = r.progressShownAt, now - shown < timing.progressInterval { return [] }
        repos[repo]?.progressShownAt = now
        let active = r.active.values.sorted { ($0.queuedAt, $0.id) < ($1.queuedAt, $1.id) }
        return [NotifyText.progress(active, repo: repo, replaces: r.progressShownAt != nil)]
    }

    // MARK: Rate limits

    /// Shows `intent` now if its slot showed nothing for `flapWindow`; else keeps it for `tick`.
    mutating func rateLimited(_ intent: NotifyIntent, now: Double) -> [NotifyIntent] {
        if var l = limited[intent.slot], now - l.shownAt < timing.flapWindow {
            l.pending = intent
            limited[intent.slot] = l
            return []
        }
        limited[intent.slot] = Limited(shownAt: now, shown: intent, pending: nil)
        return [intent]
    }
}
