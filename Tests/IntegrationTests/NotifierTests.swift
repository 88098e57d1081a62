#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// A private session bus (dbus-daemon --session --fork) with python3-dbusmock's recording
/// notification server on it, with these capabilities (GetCapabilities).
final class NotificationBus {
    static let python = "/usr/bin/python3"
    static let helper = TestEnvironment.packageRoot + "/Tests/IntegrationTests/Support/notification-bus.py"

    /// dbus-daemon and dbusmock's notification_daemon template are installed.
    static var available: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/dbus-daemon")
            && (try? DaemonProcess.run([python, "-c", "import dbusmock.templates.notification_daemon, dbus"]).status) == 0
    }

    let address: String
    private let daemonPID: Int32
    private let mockPID: Int32
    let scratch = Scratch("annexd-bus")

    init(capabilities: [String] = ["body", "actions"]) throws {
        let r = try DaemonProcess.run(["dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1"])
        let lines = r.stdout.split(separator: "\n").map(String.init)
        guard r.status == 0, lines.count >= 2, let pid = Int32(lines[1]) else {
            throw DaemonProcess.Failure(description: "dbus-daemon --session did not start: \(r)")
        }
        address = lines[0]
        daemonPID = pid
        mockPID = try DaemonProcess.spawn([Self.python, "-m", "dbusmock", "--template", "notification_daemon",
                                           "-p", JSONValue.object(["capabilities": .string(capabilities.joined(separator: " "))]).serialized()],
                                          env: ["DBUS_SESSION_BUS_ADDRESS": address], stdinPath: nil,
                                          outputPath: scratch.path + "/dbusmock.log")
        let deadline = Date().addingTimeInterval(20)
        while (try? helper(["calls"]))?.status != 0 {
            guard Date() < deadline else { throw DaemonProcess.Failure(description: "the notification mock did not come up") }
            usleep(100_000)
        }
    }

    deinit {
        kill(mockPID, SIGTERM)
        _ = DaemonProcess.waitForExit(pid: mockPID, timeout: 5)
        kill(daemonPID, SIGTERM)
    }

    private func helper(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try DaemonProcess.run([Self.python, Self.helper] + args, env: ["DBUS_SESSION_BUS_ADDRESS": address])
    }

    /// One Notify call the server recorded, and the id it answered (the mock counts new ones from 1).
    struct Call {
        let id: UInt32
        let replacesID: UInt32
        let summary, body: String
        let actions: [String]
        let category: String?
        let urgency: Int64?
    }

    /// The Notify calls so far, in order.
    func calls() throws -> [Call] {
        let r = try helper(["calls"])
        guard r.status == 0 else { throw DaemonProcess.Failure(description: "GetCalls failed: \(r.stderr)") }
        var next: UInt32 = 1
        return try r.stdout.split(separator: "\n").map { line in
            let j = try JSONValue(parsing: String(line))
            let replaces = UInt32(j["replaces_id"]?.intValue ?? 0)
            var id = replaces
            if replaces == 0 { id = next; next += 1 }
            return Call(id: id, replacesID: replaces, summary: j["summary"]?.stringValue ?? "", body: j["body"]?.stringValue ?? "",
                        actions: j["actions"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                        category: j["hints"]?["category"]?.stringValue, urgency: j["hints"]?["urgency"]?.intValue)
        }
    }

    /// Polls until `done(calls)`; the calls then (or at the deadline).
    func waitCalls(timeout: TimeInterval = 30, until done: ([Call]) -> Bool) throws -> [Call] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let c = try calls()
            if done(c) || Date() > deadline { return c }
            usleep(200_000)
        }
    }

    /// ActionInvoked(id, key), as a person choosing the action.
    func invoke(_ id: UInt32, _ key: String) throws {
        let r = try helper(["invoke", "\(id)", key])
        guard r.status == 0 else { throw DaemonProcess.Failure(description: "EmitSignal failed: \(r.stderr)") }
    }
}

@Suite(.serialized, .timeLimit(minutes: 5),
       .enabled(if: NotificationBus.available,
                "needs dbus-daemon (Debian's dbus) and /usr/bin/python3 -m dbusmock (python3-dbusmock): make deps installs them"))
struct NotifierTests {
    static var annexNotify: String { Posix.dirname(TestEnvironment.annexd) + "/annex-notify" }

    /// annex-notify following `socket` on the bus at `busAddress` (stopped when released): its
    /// stdout goes to `output`, its stderr (the log) to `log`.
    final class Notifier {
        let pid: Int32
        let output: String, log: String

        init(socket: String, busAddress: String, in dir: String, name: String, _ extra: [String] = []) throws {
            output = "\(dir)/\(name).out"
            log = "\(dir)/\(name).log"
            pid = try DaemonProcess.spawn([NotifierTests.annexNotify, "--socket", socket, "--quiet-period", "1",
                                           "--progress-interval", "1"] + extra,
                                          env: ["DBUS_SESSION_BUS_ADDRESS": busAddress], stdinPath: nil,
                                          outputPath: output, errorPath: log)
        }

        deinit {
            kill(pid, SIGTERM)
            _ = DaemonProcess.waitForExit(pid: pid, timeout: 5)
        }

        /// The log once it has `count` times `text` (or at the deadline).
        func waitLog(count: Int = 1, of text: String, timeout: TimeInterval = 30) -> String {
            NotifierTests.wait(for: log, count: count, of: text, timeout: timeout)
        }
    }

    static func wait(for file: String, count: Int, of text: String, timeout: TimeInterval = 30) -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let s = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
            if s.components(separatedBy: text).count - 1 >= count || Date() > deadline { return s }
            usleep(100_000)
        }
    }

    /// A file `lost` in the client whose content nobody has (added, then dropped without checking).
    func addLostFile(_ f: TransferFixture) throws {
        try sh("head -c 1000 /dev/urandom > lost && git annex add -q lost && git commit -qm lost && git annex drop -q --force lost",
               in: f.client, annex: f.annex)
    }

    @Test func transfersFailuresTheRetryActionAndARestart() throws {
        let bus = try NotificationBus()
        let f = try TransferFixture(files: ["photo.jpg": 2_000_000, "later.txt": 5000])
        try addLostFile(f)
        let notifier = try Notifier(socket: f.daemon.socket, busAddress: bus.address, in: bus.scratch.path, name: "bus")
        let log = notifier.log
        // And one that only says what it would show (--dry-run --json), on stdout.
        let dry = try Notifier(socket: f.daemon.socket, busAddress: "unix:path=/nonexistent", in: bus.scratch.path,
                               name: "dry-run", ["--dry-run", "--json"])
        #expect(notifier.waitLog(of: "subscribed to annexd").contains("subscribed to annexd"))
        #expect(dry.waitLog(of: "subscribed to annexd").contains("subscribed to annexd"))

        // A finished transfer: exactly one notification naming the file, in place of the
        // progress notification if one was shown.
        let photo = try #require(f.start("get", paths: ["photo.jpg"]).first?["id"]?.stringValue)
        #expect(try f.wait(photo)["state"]?.stringValue == "done")
        var calls = try bus.waitCalls { $0.contains { $0.summary == "Downloaded photo.jpg" } }
        let finished = calls.filter { $0.summary == "Downloaded photo.jpg" }
        #expect(finished.count == 1, "\(calls.map(\.summary))")
        #expect(finished.first?.category == "transfer.complete")
        #expect(finished.first?.body.contains("from peer") == true, "\(finished.first?.body ?? "")")
        let progress = calls.filter { $0.summary == "Downloading photo.jpg" }
        #expect(finished.first?.replacesID == (progress.last?.id ?? 0), "progress \(progress.map(\.id)), finished \(finished.map(\.replacesID))")
        #expect(calls.allSatisfy { $0.actions.isEmpty || $0.actions == ["retry", "Retry"] })
        let dryLines = Self.wait(for: dry.output, count: 1, of: "Downloaded photo.jpg").split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
        let dryFinished = dryLines.filter { $0["summary"]?.stringValue == "Downloaded photo.jpg" }
        #expect(dryFinished.count == 1 && dryFinished.first?["category"]?.stringValue == "transfer.complete", "\(dryLines)")

        // A failed transfer: the reason and a Retry action.
        let lost = try #require(f.start("get", paths: ["lost"]).first?["id"]?.stringValue)
        #expect(try f.wait(lost)["state"]?.stringValue == "failed")
        calls = try bus.waitCalls { $0.contains { $0.summary == "Could not download lost" } }
        let failure = try #require(calls.first { $0.summary == "Could not download lost" })
        #expect(failure.body.hasSuffix("(not_on_peer)"), "\(failure.body)")
        #expect(failure.actions == ["retry", "Retry"])
        #expect(failure.category == "transfer.error" && failure.urgency == 2)

        // Invoking the action over the bus: annexd queues the transfer again (transfer.retry: transfer.resumed),
        // runs it, and it fails the same way; that failure is shown too.
        let watch = try f.daemon.process.connect()
        _ = try watch.request("events.subscribe", ["types": ["transfer.resumed", "transfer.failed"]])
        try bus.invoke(failure.id, "retry")
        var seen: [String] = []
        let deadline = Date().addingTimeInterval(30)
        while seen != ["transfer.resumed", "transfer.failed"], Date() < deadline,
              let n = try? watch.readJSON(timeout: max(0.1, deadline.timeIntervalSinceNow)) {
            if n["params"]?["transfer"]?["id"]?.stringValue == lost, let type = n["params"]?["type"]?.stringValue { seen.append(type) }
        }
        #expect(seen == ["transfer.resumed", "transfer.failed"], "annex-notify's log:\n\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        #expect(notifier.waitLog(of: "retrying \(lost)").contains("retrying \(lost)"))
        calls = try bus.waitCalls { $0.filter { $0.summary == "Could not download lost" }.count >= 2 }
        #expect(calls.filter { $0.summary == "Could not download lost" }.count == 2)
        let before = calls.count

        // annexd restarted: the notifier follows the new boot, shows what happened in it (a
        // get started at once, before it reconnected) and nothing of the old boot again.
        // (annexd saves its queue within a second of a change: once the failed transfer is out
        // of it, a SIGKILL does not bring it back as unfinished.)
        let queue = f.daemon.stateDir + "/transfers.json"
        let saved = Date().addingTimeInterval(10)
        while ((try? String(contentsOfFile: queue, encoding: .utf8)) ?? "").contains(lost), Date() < saved { usleep(100_000) }
        f.daemon.kill9()
        try f.daemon.start()
        let later = try #require(f.start("get", paths: ["later.txt"]).first?["id"]?.stringValue)
        #expect(try f.wait(later)["state"]?.stringValue == "done")
        #expect(notifier.waitLog(count: 2, of: "subscribed to annexd").contains("newBoot"))
        calls = try bus.waitCalls { $0.contains { $0.summary == "Downloaded later.txt" } }
        usleep(2_500_000)  // anything repeated would come with it, or within the quiet period
        calls = try bus.calls()
        #expect(calls.filter { $0.summary == "Downloaded later.txt" }.count == 1, "\(calls.map(\.summary))")
        #expect(calls.filter { $0.summary == "Downloaded photo.jpg" }.count == 1, "\(calls.map(\.summary))")
        #expect(calls.filter { $0.summary == "Could not download lost" }.count == 2, "\(calls.map(\.summary))")
        let transfersSince = calls.dropFirst(before).filter { $0.category?.hasPrefix("transfer") == true }
        #expect(transfersSince.map(\.summary) == ["Downloaded later.txt"], "\(calls.dropFirst(before).map(\.summary))")
        withExtendedLifetime((notifier, dry)) {}
    }

    /// A server without the "actions" capability gets the failure without the Retry action.
    @Test func noActionsWhereTheServerHasNone() throws {
        let bus = try NotificationBus(capabilities: ["body"])
        let f = try TransferFixture(files: ["a": 10])
        try addLostFile(f)
        let notifier = try Notifier(socket: f.daemon.socket, busAddress: bus.address, in: bus.scratch.path, name: "bus")
        #expect(notifier.waitLog(of: "subscribed to annexd").contains("subscribed to annexd"))
        let lost = try #require(f.start("get", paths: ["lost"]).first?["id"]?.stringValue)
        #expect(try f.wait(lost)["state"]?.stringValue == "failed")
        let calls = try bus.waitCalls { $0.contains { $0.summary == "Could not download lost" } }
        let failure = try #require(calls.first { $0.summary == "Could not download lost" })
        #expect(failure.actions.isEmpty, "\(failure.actions)")
        #expect(failure.body.hasSuffix("(not_on_peer)"), "\(failure.body)")
        withExtendedLifetime(notifier) {}
    }
}
