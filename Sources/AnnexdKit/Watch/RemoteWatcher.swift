import Foundation
import Shared

/// One watched remote: a thread that keeps a NOTIFYCHANGE connection to it up (redialling
/// after ReconnectBackoff's delays), and a thread that turns what it reports into debounced
/// triggers (ChangeDebouncer) and runs the trigger. `stop()` ends both: the connection is
/// broken at once (no wait for the remote's next change), a pending retry is cancelled.
final class RemoteWatcher: @unchecked Sendable {
    /// What the watcher needs from the daemon.
    struct Context: Sendable {
        var repo: EventRepo
        var peer: WatchedPeer
        /// Dials the remote and authenticates (blocking).
        var dial: @Sendable () throws(PeerDialer.DialError) -> P2PClient
        var events: EventLog
        var memory: ChangeMemoryStore
        var memoryKey: String
        var backoff: ReconnectBackoff
        var debouncer: ChangeDebouncer
        /// Whether the repository's own branches already hold every commit of a CHANGED (then
        /// a pull brings nothing: the remote has only taken what it pulled from here).
        var hasLocally: @Sendable ([String]) -> Bool = { _ in false }
        /// A debounced change (runs on the watcher's trigger thread; changes meanwhile gather).
        var onTrigger: @Sendable () -> Void
        var log: @Sendable (String) -> Void
    }

    let context: Context
    private let cond = NSCondition()
    // Guarded by `cond`:
    private var stopped = false
    private var client: P2PClient?
    private var debouncer: ChangeDebouncer
    private var threadsRunning = 0
    private var connected = false

    init(_ context: Context) {
        self.context = context
        debouncer = context.debouncer
    }

    func start() {
        cond.lock()
        threadsRunning = 2
        cond.unlock()
        let reader = Thread { [self] in watch(); exited() }
        reader.name = "annexd watch \(context.peer.name)"
        reader.start()
        let trigger = Thread { [self] in runTriggers(); exited() }
        trigger.name = "annexd watch-trigger \(context.peer.name)"
        trigger.start()
    }

    /// Ends watching; waits up to `timeout` seconds for both threads to finish (a dial through
    /// SOCKS, or a trigger still running, may take longer: they end on their own after it).
    func stop(timeout: Double = 5) {
        cond.lock()
        stopped = true
        client?.interrupt()  // under the lock: the reader closes it only after unregistering it
        cond.broadcast()
        let deadline = Date(timeIntervalSinceNow: timeout)
        while threadsRunning > 0 && cond.wait(until: deadline) {}
        cond.unlock()
    }

    var isStopped: Bool { cond.lock(); defer { cond.unlock() }; return stopped }
    var isConnected: Bool { cond.lock(); defer { cond.unlock() }; return connected }
    /// Both threads have ended.
    var hasEnded: Bool { cond.lock(); defer { cond.unlock() }; return threadsRunning == 0 }

    // MARK: The connection

    private func watch() {
        var backoff = context.backoff
        while !isStopped {
            let failure: (reason: String, message: String)
            do {
                let c = try context.dial()
                guard register(c) else { c.close(); break }
                backoff.connected()
                context.events.publish(RemoteConnected(repo: context.repo, peer: context.peer))
                failure = follow(c)
                unregister()
                c.close()
            } catch {
                failure = (error.code, error.description)
            }
            if isStopped { break }
            let delay = backoff.failed(random: Double.random(in: 0..<1))
            context.log("\(context.peer.name): \(failure.message); again in \(String(format: "%.1f", delay)) s")
            context.events.publish(RemoteDisconnected(repo: context.repo, peer: context.peer, reason: failure.reason,
                                                      message: failure.message, nextRetry: Date().timeIntervalSince1970 + delay))
            pause(delay)
        }
    }

    /// NOTIFYCHANGE after NOTIFYCHANGE until the connection ends; why it ended.
    private func follow(_ c: P2PClient) -> (reason: String, message: String) {
        var memory = context.memory.memory(context.memoryKey)
        var first = true
        while true {
            let items: [String]
            do { items = try c.waitForChange() } catch {
                if isStopped {
                    context.events.publish(RemoteDisconnected(repo: context.repo, peer: context.peer, reason: "stopped",
                                                              message: "watching ended", nextRetry: nil))
                    return ("stopped", "watching ended")
                }
                switch error {
                case P2PClient.ClientError.closed: return ("connection_lost", "the connection to \(context.peer.name) ended")
                default: return ("protocol_error", "\(context.peer.name): \(error)")
                }
            }
            let news = memory.report(items, first: first)
            first = false
            do { try context.memory.remember(context.memoryKey, memory) } catch {
                context.log("cannot save what \(context.peer.name) reported: \(error)")
            }
            // Two repositories watching each other would otherwise pull back and forth: each
            // pull moves the puller's refs, which the other is told of, though it has those
            // commits already (it made them).
            if news && !context.hasLocally(items) {
                context.events.publish(RemoteChanged(repo: context.repo, peer: context.peer, refs: items))
                noteChange()
            }
        }
    }

    private func register(_ c: P2PClient) -> Bool {
        cond.lock(); defer { cond.unlock() }
        guard !stopped else { return false }
        client = c
        connected = true
        return true
    }

    private func unregister() {
        cond.lock(); defer { cond.unlock() }
        client = nil
        connected = false
    }

    /// Waits `seconds`, or until stopped.
    private func pause(_ seconds: Double) {
        cond.lock(); defer { cond.unlock() }
        let until = Date(timeIntervalSinceNow: seconds)
        while !stopped && cond.wait(until: until) {}
    }

    // MARK: Triggers

    private static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    private func noteChange() {
        cond.lock(); defer { cond.unlock() }
        debouncer.changed(at: Self.now())
        cond.broadcast()
    }

    private func runTriggers() {
        cond.lock()
        while !stopped {
            let now = Self.now()
            if debouncer.fire(at: now) {
                cond.unlock()
                context.onTrigger()
                cond.lock()
                let end = Self.now()
                debouncer.finished(at: end, took: end - now)
                continue
            }
            if let d = debouncer.deadline {
                _ = cond.wait(until: Date(timeIntervalSinceNow: max(0.001, d - now)))
            } else {
                cond.wait()
            }
        }
        cond.unlock()
    }

    private func exited() {
        cond.lock()
        threadsRunning -= 1
        cond.broadcast()
        cond.unlock()
    }
}
