#if canImport(Glibc)
import Glibc
#endif
import ClientKit
import Foundation
import Shared

/// Where intents go: the notification server, or stdout (--dry-run).
protocol IntentSink: AnyObject {
    func show(_ intent: NotifyIntent) throws
    /// The bus's descriptor to poll, if any.
    var fd: Int32? { get }
    /// Actions people invoked since the last call.
    func invokedActions() throws -> [NotifyIntent.Action]
}

/// The notifier's I/O loop, on one thread: annexd's event stream (a subscription kept across
/// reconnects and restarts by `EventCursor`), the sink's bus, and `NotifyPolicy`'s timers.
final class Notifier {
    let socketPath: String
    let sink: IntentSink
    var policy: NotifyPolicy
    var cursor = EventCursor()
    private var events: RPCClient?
    private var reconnectAt = 0.0
    /// After a new boot: the transfers are re-read once its kept events up to this id are taken.
    private var resyncAfter: Int?

    init(socketPath: String, sink: IntentSink, timing: NotifyPolicy.Timing) {
        self.socketPath = socketPath
        self.sink = sink
        policy = NotifyPolicy(timing: timing)
    }

    static var now: Double { Date().timeIntervalSince1970 }

    func log(_ s: String) { FileHandle.standardError.write(Data("annex-notify: \(s)\n".utf8)) }

    func run() throws -> Never {
        while true {
            if events == nil && Self.now >= reconnectAt { connect() }
            var fds = [events?.fd, sink.fd].compactMap { $0 }.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let wait = min(0.25, max(0, (policy.nextDeadline ?? .infinity) - Self.now))
            _ = poll(&fds, nfds_t(fds.count), Int32(wait * 1000))
            if let c = events {
                let readable = fds.first { $0.fd == c.fd }.map { $0.revents != 0 } ?? false
                do {
                    if let got = try c.readNotifications(readingSocket: readable) { got.forEach(handle) } else { lost("annexd closed the connection") }
                } catch { lost("\(error)") }
            }
            for action in try sink.invokedActions() { invoke(action) }
            show(policy.tick(now: Self.now))
        }
    }

    /// The connection ended or could not be made: the next attempt after the cursor's backoff.
    private func lost(_ why: String) {
        events = nil
        let delay = cursor.connectionFailed()
        log("\(why); trying again in \(String(format: "%.1f", delay)) s")
        reconnectAt = Self.now + delay
    }

    /// Connects and subscribes as the cursor plans; re-reads the transfers when events were missed.
    private func connect() {
        do {
            let c = try RPCClient(path: socketPath)
            let boot = try c.call(DaemonStatusMethod.self, RPCNoParams()).boot
            var plan = cursor.plan(daemonBoot: boot)
            var early: [RPCNotification] = []
            let result: EventsSubscribe.Result
            do {
                result = try c.call(EventsSubscribe.self, .init(since: EventCursor.since(plan))) { early.append($0) }
            } catch RPCClient.Failure.rpc(let e) where e.reason == "unknown_event_id" {
                plan = .resync
                result = try c.call(EventsSubscribe.self, .init()) { early.append($0) }
            }
            cursor.subscribed(boot: result.boot, latest: result.latest, since: EventCursor.since(plan))
            log("subscribed to annexd at \(socketPath) (boot \(result.boot), \(plan))")
            events = c
            // A snapshot loses the events since the last one: re-read now. A new boot's replay
            // comes first, then what it did not show of the transfers followed before.
            if plan == .resync { try resync(c) { early.append($0) } }
            resyncAfter = plan == .newBoot ? result.latest : nil
            early.forEach(handle)
            resyncIfReplayed()
        } catch {
            lost("cannot follow annexd (\(error))")
        }
    }

    /// Re-reads the unsettled transfers and those followed, for the policy's `reconcile`.
    private func resync(_ c: RPCClient, _ early: @escaping (RPCNotification) -> Void) throws {
        var transfers = try c.call(TransferList.self, .init(states: [.queued, .active, .verifying, .paused], limit: 10000),
                                   onNotification: early).transfers
        let listed = Set(transfers.map(\.id))
        for id in policy.followedTransfers where !listed.contains(id) {
            if let t = try? c.call(TransferGet.self, .init(id: id), onNotification: early) { transfers.append(t) }
        }
        show(policy.reconcile(transfers, now: Self.now))
    }

    private func handle(_ n: RPCNotification) {
        if n.method == "event.overflow", let from = n.params?["resume_from"]?.intValue, let boot = n.params?["boot"]?.stringValue {
            cursor.overflowed(resumeFrom: Int(from), boot: boot)
            log("fell behind annexd's events; subscribing again")
            events = nil
            reconnectAt = Self.now
            return
        }
        guard n.method == "event", let e = n.params, let id = e["id"]?.intValue, let boot = e["boot"]?.stringValue else { return }
        switch cursor.take(id: Int(id), boot: boot) {
        case .duplicate: return
        case .deliver: show(policy.take(event: e, now: Self.now))
        case .gap(let missed):
            log("events \(missed.lowerBound)...\(missed.upperBound) are missing; re-reading the transfers")
            show(policy.take(event: e, now: Self.now))
            resyncAfter = 0
        }
        resyncIfReplayed()
    }

    /// Re-reads the transfers (on a connection of its own) once the events it waited for are in.
    private func resyncIfReplayed() {
        guard let after = resyncAfter, (cursor.lastID ?? 0) >= after else { return }
        resyncAfter = nil
        do { try resync(RPCClient(path: socketPath)) { _ in } } catch { log("cannot re-read the transfers: \(error)") }
    }

    private func show(_ intents: [NotifyIntent]) {
        for i in intents {
            do { try sink.show(i) } catch { log("cannot show \"\(i.summary)\": \(error)") }
        }
    }

    /// An action people chose: transfer.retry in annexd, on a connection of its own.
    private func invoke(_ action: NotifyIntent.Action) {
        guard !action.retryTransfers.isEmpty else { return }
        do {
            let r = try RPCClient(path: socketPath).call(TransferRetry.self, .init(ids: action.retryTransfers))
            log("retrying \(action.retryTransfers.joined(separator: ", ")): \(r.transfers.map(\.state.rawValue).joined(separator: ", "))")
        } catch {
            log("cannot retry \(action.retryTransfers.joined(separator: ", ")): \(error)")
        }
    }
}
