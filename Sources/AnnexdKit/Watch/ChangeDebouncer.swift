/// Turns a remote's changes into sync triggers: the first change after a quiet spell triggers
/// at once (a single commit arrives as fast as possible); changes that follow within `quiet`
/// of a trigger are gathered and trigger once, when none came for `quiet` seconds or
/// `maxDelay` after the first of them, whichever is sooner. So a burst gives at most two
/// triggers, and a steady stream one every `maxDelay`. Pure: the caller gives the time.
///
/// `defers`: of two repositories watching each other, the one that lets the other pull
/// first. Each pull moves the puller's git-annex branch (a merge), which the other is told of;
/// two pulls at once make two merges neither has, and the pair can pull back and forth in
/// step for many rounds (they did: a sync each 0.7 s on both sides for as long as watched).
/// After each of its own syncs, the deferring side waits `quiet` (the other side's wait before
/// it pulls) plus twice as long as that sync took (the other's pull), so the other's pull has
/// ended and its merge, which holds this side's, is simply taken.
struct ChangeDebouncer: Sendable, Equatable {
    let quiet: Double
    let maxDelay: Double
    let defers: Bool
    private var lastTrigger: Double?
    private var firstPending: Double?
    private var lastPending: Double?
    private var heldUntil: Double?

    init(quiet: Double = 0.5, maxDelay: Double = 3, defers: Bool = false) {
        precondition(quiet > 0 && maxDelay >= quiet)
        self.quiet = quiet
        self.maxDelay = maxDelay
        self.defers = defers
    }

    /// A change was seen at `now`.
    mutating func changed(at now: Double) {
        if firstPending == nil { firstPending = now }
        lastPending = now
    }

    /// When the pending changes are due to trigger (nil: none pending).
    var deadline: Double? {
        guard let first = firstPending, let last = lastPending else { return nil }
        var due = first
        // Leading edge: nothing triggered lately.
        if let t = lastTrigger, first - t < quiet {
            due = min(last + quiet, first + maxDelay)
        }
        return max(due, heldUntil ?? due)
    }

    /// The sync a trigger ran ended at `now`, after `took` seconds.
    mutating func finished(at now: Double, took: Double) {
        if defers { heldUntil = now + quiet + 2 * took }
    }

    /// True (once) when the pending changes trigger at `now`.
    mutating func fire(at now: Double) -> Bool {
        guard let d = deadline, d <= now else { return false }
        lastTrigger = now
        firstPending = nil
        lastPending = nil
        return true
    }
}
