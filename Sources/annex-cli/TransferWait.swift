#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ClientKit
import Shared

/// Shows transfers as they change: JSON lines (`--json`: each event's params as is, then a
/// summary line), plain lines (one per state change, when stdout is not a terminal), or a
/// board redrawn in place (one progress line per unsettled transfer, on a terminal).
struct TransferOutput {
    enum Mode {
        case json, plain
        case terminal(TransferBoard)
    }
    var mode: Mode

    init(json: Bool) {
        if json { mode = .json } else if isatty(1) != 0 { mode = .terminal(TransferBoard(width: Self.terminalWidth())) } else { mode = .plain }
    }

    static func terminalWidth() -> Int {
        var ws = winsize()
        if ioctl(1, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0 { return Int(ws.ws_col) }
        return Int(ProcessInfo.processInfo.environment["COLUMNS"] ?? "") ?? 80
    }

    static var now: Double { Date().timeIntervalSince1970 }

    /// The transfers as they stand when watching starts.
    mutating func start(_ watch: TransferWatch) {
        switch mode {
        case .json: break
        case .plain: write(watch.all.map { TransferRendering.line($0, now: Self.now) })
        case .terminal: redraw(permanent: watch.all.filter(\.isSettled).map { TransferRendering.line($0, now: Self.now) }, watch)
        }
    }

    /// One event (its params) that changed `changed` in `watch`.
    mutating func event(_ params: JSONValue, changed: [TransferInfo], _ watch: TransferWatch) {
        switch mode {
        case .json: if watch.concerns(event: params) { write([params.serialized()]) }
        case .plain: write(changed.map { TransferRendering.line($0, now: Self.now) })
        case .terminal:
            // Lines that stay: what ended, and failures that will be retried; the rest is live.
            let stays = changed.filter { $0.isSettled || $0.nextRetry != nil || $0.error != nil }
            redraw(permanent: stays.map { TransferRendering.line($0, now: Self.now) }, watch)
        }
    }

    /// A transfer re-read with transfer.get (after missed events).
    mutating func refreshed(_ changed: [TransferInfo], _ watch: TransferWatch) {
        switch mode {
        case .json: for t in changed { write([JSONValue.object(["transfer": t.json]).serialized()]) }
        case .plain: write(changed.map { TransferRendering.line($0, now: Self.now) })
        case .terminal: redraw(permanent: changed.filter(\.isSettled).map { TransferRendering.line($0, now: Self.now) }, watch)
        }
    }

    /// The end: the summary line (JSON), or a count and what did not end done (stderr).
    mutating func finish(_ watch: TransferWatch) {
        let outcome = watch.outcome
        if case .terminal(var board) = mode {
            put(board.frame(permanent: [], live: []))
            mode = .terminal(board)
        }
        if case .json = mode { return write([outcome.json.serialized()]) }
        if watch.ids.isEmpty { return write(["nothing to transfer"]) }
        let lines = TransferRendering.summary(outcome, now: Self.now)
        if outcome.succeeded { return write(lines) }
        FileHandle.standardError.write(Data(lines.map { $0 + "\n" }.joined().utf8))
    }

    private mutating func redraw(permanent: [String], _ watch: TransferWatch) {
        guard case .terminal(var board) = mode else { return }
        put(board.frame(permanent: permanent, unsettled: watch.all.filter { !$0.isSettled }, now: Self.now))
        mode = .terminal(board)
    }

    private func write(_ lines: [String]) {
        for l in lines { put(l + "\n") }
    }

    private func put(_ s: String) {
        print(s, terminator: "")
        fflush(nil)
    }
}

/// Follows transfer.* events on a connection until every watched transfer is settled (or,
/// for `transfers --follow`, until the daemon goes away), keeping `watch` and `output` current.
/// Subscribe (`TransferWaiter.subscribe`) before asking for the transfers, so no event is missed.
struct TransferWaiter {
    let client: RPCClient
    var watch: TransferWatch
    var output: TransferOutput

    /// The event types followed: transfer.* and daemon.stopping.
    static let types = TransferWatch.eventTypes + [DaemonStopping.type]

    /// events.subscribe for transfer events on `client`; notifications that come with the
    /// answer (the snapshot, early events) go to `early`.
    static func subscribe(_ client: RPCClient, common: CommonOptions, since: Int? = nil,
                          early: @escaping (RPCNotification) -> Void) throws {
        _ = try common.needing("transfers") {
            try client.call(EventsSubscribe.self, .init(since: since, types: types), onNotification: early)
        }
    }

    private enum Stop {
        case overflow(resumeFrom: Int)
        case daemonStopping
    }

    /// Handles `early` notifications, then follows; returns when settled (unless `forever`).
    mutating func wait(early: [RPCNotification], common: CommonOptions, forever: Bool = false) throws -> TransferWatch.Outcome {
        output.start(watch)
        let client = self.client
        var pending = early
        var lastResume: Int?
        while true {
            var stop: Stop?
            for n in pending where stop == nil { stop = try handle(n) }
            pending = []
            if stop == nil && (forever || !watch.isSettled) {
                var failure: Error?
                try client.follow { n in
                    do { stop = try handle(n) } catch { failure = error }
                    return failure == nil && stop == nil && (forever || !watch.isSettled)
                }
                if let failure { throw failure }
            }
            switch stop {
            case nil:
                if !forever && watch.isSettled {
                    output.finish(watch)
                    return watch.outcome
                }
                throw RPCClient.Failure.io("annexd closed the connection" + (forever ? "" : " before the transfers finished; they go on: see `annex-cli transfers`"))
            case .daemonStopping:
                throw RPCClient.Failure.io("annexd is stopping" + (forever ? "" : "; unfinished transfers go on when it starts again: see `annex-cli transfers`"))
            case .overflow(let from):
                // The same overflow again right after resubscribing from there: those events are gone.
                pending = try resubscribe(since: from == lastResume ? nil : from, common: common)
                lastResume = from
            }
        }
    }

    /// After an overflow: resubscribe from where it stopped (`since`); when those events are
    /// gone (nil, or the daemon says so), resubscribe afresh and re-read every unsettled transfer.
    private mutating func resubscribe(since: Int?, common: CommonOptions) throws -> [RPCNotification] {
        var got: [RPCNotification] = []
        if let since {
            do {
                try Self.subscribe(client, common: common, since: since) { got.append($0) }
                return got
            } catch RPCClient.Failure.rpc(let e) where e.reason == "unknown_event_id" {
                got = []
            }
        }
        try Self.subscribe(client, common: common) { got.append($0) }
        let changed = try watch.all.filter { !$0.isSettled }.compactMap { t in
            try watch.update(client.call(TransferGet.self, .init(id: t.id))) ? watch.transfers[t.id] : nil
        }
        output.refreshed(changed, watch)
        return got
    }

    private mutating func handle(_ n: RPCNotification) throws -> Stop? {
        let step: TransferWatch.Step
        do { step = try watch.take(n) } catch let e as TransferWatch.UnreadableEvent { throw RPCClient.Failure.io(e.description) }
        switch step {
        case .event(let params, let changed): output.event(params, changed: changed, watch)
        case .overflow(let from): return .overflow(resumeFrom: from)
        case .daemonStopping: return .daemonStopping
        case .other: break
        }
        return nil
    }
}

extension CommonOptions {
    /// Runs calls that only newer daemons answer: "method not found" (or an unknown event
    /// type) becomes "this annexd does not support FEATURE: upgrade it".
    func needing<T>(_ feature: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch RPCClient.Failure.rpc(let e) {
            throw RPCClient.Failure.rpc(e.unsupported(feature) ?? e)
        }
    }
}
