import Foundation
import Shared
import Synchronization

/// One connection's event subscription, paced by its reader. While the client keeps up, each
/// event is written as it is published. Once `highWater` bytes are written but not yet taken
/// by the socket, the feed stops copying and only remembers where it is (`cursor`); as the
/// client reads and the backlog falls under `lowWater`, it pulls the next events from the log's
/// ring. So a slow or stalled client costs at most `highWater` bytes however many events pass,
/// and a burst never cuts off a client that reads: only a client that falls further behind
/// than the ring keeps gets `event.overflow` (with where to resume), and then nothing more.
final class EventFeed: @unchecked Sendable {
    static let highWater = 16 << 10
    static let lowWater = 4 << 10

    /// Writes bytes to the client in call order; calls `written` once they have left (or the
    /// connection is gone), later: never from within the call, which holds the feed's lock.
    typealias Sink = @Sendable (_ bytes: [UInt8], _ written: @escaping @Sendable () -> Void) -> Void

    private struct State {
        /// The last event id written or passed over.
        var cursor: UInt64
        /// Events after `cursor` wait in the ring, not in memory here.
        var behind = false
        var pendingBytes = 0
        var catchingUp = false
        var ended = false
    }

    private let state: Mutex<State>
    private let log: EventLog
    private let types: Set<String>?
    private let sink: Sink

    init(log: EventLog, after cursor: UInt64, types: Set<String>?, sink: @escaping Sink) {
        self.log = log
        self.types = types
        self.sink = sink
        state = Mutex(State(cursor: cursor))
    }

    /// Whether the feed has ended (after its overflow notification).
    var ended: Bool { state.withLock { $0.ended } }

    /// Bytes written and not yet taken by the client.
    var pendingBytes: Int { state.withLock { $0.pendingBytes } }

    /// Stops the feed (the connection closed or subscribed again): nothing more is written.
    func end() {
        state.withLock { $0.ended = true }
    }

    /// Writes a notification that is not an event (the snapshot), counted like one.
    func send(_ bytes: [UInt8]) {
        state.withLock { s in write(bytes, &s) }
    }

    /// A published event (called by the log, under its lock): written now if the client keeps
    /// up, else left in the ring for later. False once the feed has ended.
    func offer(_ event: EventLog.Event) -> Bool {
        state.withLock { s in
            if s.ended { return false }
            if event.id <= s.cursor { return true }
            if s.behind || s.pendingBytes >= Self.highWater {
                s.behind = true
                return true
            }
            write(event.notification, &s)
            s.cursor = event.id
            return true
        }
    }

    private func write(_ bytes: [UInt8], _ s: inout State) {
        s.pendingBytes += bytes.count
        let n = bytes.count
        sink(bytes) { [self] in self.written(n) }
    }

    private func written(_ n: Int) {
        let start = state.withLock { s -> Bool in
            s.pendingBytes -= n
            guard s.behind, !s.catchingUp, !s.ended, s.pendingBytes <= Self.lowWater else { return false }
            s.catchingUp = true
            return true
        }
        if start { catchUp() }
    }

    /// Pulls kept events after the cursor until the client is current again or the backlog is
    /// back at `lowWater` (a later `written` goes on from there).
    private func catchUp() {
        while true {
            let cursor = state.withLock { $0.cursor }
            let kept = log.kept(after: cursor, types: types, maxBytes: Self.highWater - Self.lowWater)
            let more = state.withLock { s -> Bool in
                switch kept {
                case .evicted:
                    write(EventSubscriptions.overflow(resumeFrom: s.cursor, boot: log.boot,
                                                      "this client fell more than \(log.capacity) events behind; resubscribe with since to continue"), &s)
                    s.ended = true
                    s.catchingUp = false
                    return false
                case .events(let events, let scannedTo):
                    for e in events where e.id > s.cursor { write(e.notification, &s) }
                    s.cursor = max(s.cursor, scannedTo)
                    if s.cursor >= log.latestID {
                        s.behind = false
                        s.catchingUp = false
                        return false
                    }
                    if s.pendingBytes > Self.lowWater {
                        s.catchingUp = false
                        return false
                    }
                    return true
                }
            }
            if !more { return }
        }
    }
}
