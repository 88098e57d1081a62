import Shared

/// Where the notifier is in annexd's event stream, across reconnects and daemon restarts:
/// the boot and the last event id taken, and how long to wait before the next connection
/// attempt. Pure: the notifier's shell feeds it answers and asks what to do.
public struct EventCursor: Sendable, Equatable {
    public private(set) var boot: String?
    public private(set) var lastID: Int?
    /// Delays between connection attempts: from 1 s, doubling up to a minute.
    public private(set) var backoff: ReconnectBackoff
    /// The resume_from of the last event.overflow, to notice one that repeats right away.
    private var lastOverflow: Int?
    /// Set when the events between `lastID` and now are gone (an overflow that repeats).
    private var lost = false

    public init(backoff: ReconnectBackoff = ReconnectBackoff(initial: 1, cap: 60, jitter: 0.1)) { self.backoff = backoff }

    /// How `events.subscribe` is called on a (re)connection.
    public enum Plan: Equatable, Sendable {
        /// Never connected: a snapshot, after the settled transfers are taken in as history.
        case first
        /// The same boot: the events after `since`.
        case resume(since: Int)
        /// annexd started again: every event of the new boot it kept (since 0), then the
        /// transfers re-read so ends missed meanwhile are shown.
        case newBoot
        /// The events since the last one are gone: a snapshot, then the transfers re-read.
        case resync
    }

    /// The plan, given the boot `daemon.status` reports.
    public func plan(daemonBoot: String) -> Plan {
        guard let boot, let lastID else { return .first }
        if boot != daemonBoot { return .newBoot }
        return lost ? .resync : .resume(since: lastID)
    }

    /// The `since` of events.subscribe for a plan (nil: a snapshot).
    public static func since(_ plan: Plan) -> Int? {
        switch plan {
        case .first, .resync: return nil
        case .resume(let since): return since
        case .newBoot: return 0
        }
    }

    /// events.subscribe answered: the stream continues after `since`, or after `latest` for a snapshot.
    public mutating func subscribed(boot: String, latest: Int, since: Int?) {
        backoff.connected()
        lost = false
        self.boot = boot
        lastID = since ?? latest
    }

    /// What one event means for the stream.
    public enum Step: Equatable, Sendable {
        case deliver
        /// Already taken (a replay that overlaps).
        case duplicate
        /// Events are missing before this one: deliver it, then re-read the state.
        case gap(missed: ClosedRange<Int>)
    }

    /// Takes in an event's envelope (`id`, `boot`); a snapshot (no new id) is a duplicate.
    public mutating func take(id: Int, boot: String) -> Step {
        if boot != self.boot {
            self.boot = boot
            lastID = id
            return .gap(missed: 0...max(0, id - 1))
        }
        if let last = lastID, id <= last { return .duplicate }
        defer { lastID = id }
        if let last = lastID, id > last + 1 { return .gap(missed: (last + 1)...(id - 1)) }
        return .deliver
    }

    /// event.overflow: the subscription ended. Resubscribing from `resumeFrom` continues without a
    /// gap, unless the same overflow comes again right away (those events are no longer kept):
    /// then the next plan is `.resync`.
    public mutating func overflowed(resumeFrom: Int, boot: String) {
        if boot != self.boot || resumeFrom == lastOverflow { lost = true }
        lastOverflow = resumeFrom
        if !lost { lastID = resumeFrom }
    }

    /// A connection attempt failed (or the connection ended): the seconds to wait before the next.
    public mutating func connectionFailed(random: Double = Double.random(in: 0..<1)) -> Double {
        backoff.failed(random: random)
    }
}
