/// Turns a remote's changes into sync triggers: the first change after a quiet spell triggers
/// at once (a single commit arrives as fast as possible); changes that follow within `quiet`
/// of a trigger are gathered and trigger once, when none came for `quiet` seconds or
/// `maxDelay` after the first of them, whichever is sooner. So a burst gives at most two
/// triggers, and a steady stream one every `maxDelay`. Pure: the caller gives the time.
struct ChangeDebouncer: Sendable, Equatable {
    let quiet: Double
    let maxDelay: Double
    private var lastTrigger: Double?
    private var firstPending: Double?
    private var lastPending: Double?

    init(quiet: Double = 0.5, maxDelay: Double = 3) {
        precondition(quiet > 0 && maxDelay >= quiet)
        self.quiet = quiet
        self.maxDelay = maxDelay
    }

    /// A change was seen at `now`.
    mutating func changed(at now: Double) {
        if firstPending == nil { firstPending = now }
        lastPending = now
    }

    /// When the pending changes are due to trigger (nil: none pending).
    var deadline: Double? {
        guard let first = firstPending, let last = lastPending else { return nil }
        // Leading edge: nothing triggered lately.
        if let t = lastTrigger, first - t < quiet {
            return min(last + quiet, first + maxDelay)
        }
        return first
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
