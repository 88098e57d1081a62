#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import ClientKit
import Foundation
import Shared

@main
struct AnnexNotify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "annex-notify",
        abstract: "Show annexd's transfers, pairings, peers and tor trouble as desktop notifications.",
        discussion: """
            Follows annexd's events (events.subscribe) and sends notifications to the session bus's \
            org.freedesktop.Notifications. It keeps its place across reconnects and annexd restarts, \
            and tries again (1 s, doubling up to 60 s) while annexd is down. A failed transfer's Retry \
            action runs transfer.retry.
            """)

    @Option(help: "annexd's RPC socket (default: $ANNEXD_SOCKET, else $XDG_RUNTIME_DIR/annexd/rpc.sock).")
    var socket: String?

    @Flag(help: "Print the notifications it would send, one line each, instead of sending them.")
    var dryRun = false

    @Flag(help: "With --dry-run: one JSON object per line.")
    var json = false

    @Option(help: "Seconds between updates of a repository's progress notification.")
    var progressInterval: Double = 5

    @Option(help: "Seconds without a finished transfer before the finished ones are shown.")
    var quietPeriod: Double = 2

    @Option(help: "Seconds a peer's, tor's or an onion's notification stays before it is updated again.")
    var flapWindow: Double = 60

    func validate() throws {
        if json && !dryRun { throw ValidationError("--json goes with --dry-run") }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let sink: IntentSink
        if dryRun {
            sink = PrintSink(json: json)
        } else {
            do { sink = try BusSink(DBusNotifications()) } catch {
                FileHandle.standardError.write(Data("annex-notify: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
        let timing = NotifyPolicy.Timing(progressInterval: progressInterval, quietPeriod: quietPeriod, flapWindow: flapWindow)
        try Notifier(socketPath: RPCClient.socketPath(explicit: socket), sink: sink, timing: timing).run()
    }
}

/// --dry-run: each intent on stdout.
final class PrintSink: IntentSink {
    let json: Bool
    init(json: Bool) { self.json = json }
    func show(_ intent: NotifyIntent) throws {
        print(json ? intent.json.serialized() : intent.line)
        fflush(nil)
    }
    var fd: Int32? { nil }
    func invokedActions() throws -> [NotifyIntent.Action] { [] }
}

/// The notification server: each slot's notification id (for replaces_id), and the actions of
/// the notifications on screen (for ActionInvoked).
final class BusSink: IntentSink {
    let bus: DBusNotifications
    private var ids: [NotifyIntent.Slot: UInt32] = [:]
    private var actions: [UInt32: [NotifyIntent.Action]] = [:]

    init(_ bus: DBusNotifications) { self.bus = bus }

    var fd: Int32? { bus.fd }

    func show(_ intent: NotifyIntent) throws {
        let id = try bus.notify(intent, replacesID: intent.replaces ? ids[intent.slot] ?? 0 : 0)
        ids[intent.slot] = id
        actions[id] = intent.actions.isEmpty ? nil : intent.actions
    }

    func invokedActions() throws -> [NotifyIntent.Action] {
        var out: [NotifyIntent.Action] = []
        for s in try bus.signals() {
            switch s {
            case .actionInvoked(let id, let key):
                if let a = actions[id]?.first(where: { $0.key == key }) { out.append(a) }
            case .closed(let id, _):
                actions[id] = nil
                for (slot, shown) in ids where shown == id { ids[slot] = nil }
            }
        }
        return out
    }
}
