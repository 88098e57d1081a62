#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// Fault injection: the daemon's state directory turns read-only under it (a read-only bind
/// mount; root ignores permissions). Operations that must persist fail with state_unwritable
/// and a message naming the file and the errno, and change nothing in memory either; the
/// daemon serves on, and once the directory is writable again they work, and survive a restart.
@Suite(.serialized, .timeLimit(minutes: 5)) struct FaultStateDirectoryTests {
    private func rpcError(_ body: () throws -> Any) -> RPCError? {
        do { _ = try body() } catch let e as RPCError { return e } catch { return nil }
        return nil
    }

    @Test(.enabled(if: FaultChecks.isRoot, "a read-only bind mount needs root (and root ignores chmod)"))
    func readOnlyStateDirectoryRefusesChangesAndRecovers() throws {
        let d = try DaemonProcess()
        let scratch = Scratch("annexd-fault-state")
        let path = scratch.path + "/r"
        _ = try sh("git init -q r && cd r && git annex init -q r", in: scratch.path)
        _ = try d.call("repo.add", .object(["path": .string(path)]))
        let invite: JSONValue = .object(["repo": .string(path), "name": "nas"])
        var mounted = false
        defer { if mounted { _ = try? sh("umount -l '\(d.stateDir)'", in: "/", allowFailure: true) } }
        try sh("mount --bind '\(d.stateDir)' '\(d.stateDir)' && mount -o remount,bind,ro '\(d.stateDir)'", in: "/")
        mounted = true

        let refused = try #require(rpcError { try d.call("peer.invite", invite) }, "peer.invite must fail")
        #expect(refused.data["reason"]?.stringValue == "state_unwritable", "\(refused)")
        #expect(refused.message.contains("registry.json") && refused.message.contains("Read-only file system")
                && refused.message.contains("nothing was changed"), "\(refused.message)")
        let peers = try d.call("peer.list", .object(["repo": .string(path)]))
        #expect(!peers.serialized().contains("\"nas\""), "not invited in memory either: \(peers)")

        let before = try d.call("settings.get")
        let settingRefused = try #require(rpcError { try d.call("settings.set", ["download_limit": .int(1 << 20)]) })
        #expect(settingRefused.data["reason"]?.stringValue == "state_unwritable", "\(settingRefused)")
        #expect(try d.call("settings.get")["download_limit"] == before["download_limit"], "the setting did not change in memory")
        try FaultChecks.expectServing(d)
        #expect(try d.call("repo.list").serialized().contains(path), "what was saved before is still there")

        try sh("umount '\(d.stateDir)'", in: "/")
        mounted = false
        _ = try d.call("peer.invite", invite)
        _ = try d.call("settings.set", ["download_limit": .int(1 << 20)])
        // Saved: a daemon started again on the same state directory has both.
        #expect(d.terminate() == 0)
        let again = try DaemonProcess(stateDir: d.stateDir, socketPath: d.socketPath)
        d.keepsDirectory = true
        again.alsoRemove = [d.dir]
        #expect(try again.call("peer.list", .object(["repo": .string(path)])).serialized().contains("\"nas\""))
        #expect(try again.call("settings.get")["download_limit"]?.intValue == 1 << 20)
    }
}

/// The transfer queue under a read-only state directory: a transfer.start that cannot be
/// written down is refused with state_unwritable and queues nothing (it would be forgotten by
/// the next start); once the directory is writable again it is queued, and a restarted daemon
/// still has it.
@Suite(.serialized, .timeLimit(minutes: 5)) struct FaultTransferQueueTests {
    @Test(.enabled(if: FaultChecks.isRoot, "a read-only bind mount needs root (and root ignores chmod)"))
    func aStartThatCannotBeSavedIsRefusedAndQueuesNothing() throws {
        let f = try TransferFixture(files: ["a": 10])
        let d = f.daemon.process
        // The peer is gone, so a queued transfer stays unfinished (peer_unreachable is retried).
        f.serving?.kill9()
        let start: JSONValue = ["repo": .string(f.client), "direction": "get", "keys": [.string("SHA256E-s100--" + String(repeating: "ab", count: 32))],
                                "peer": "peer"]
        // In the daemon's own mount namespace (the fixture's daemons may run in one of their own).
        let inDaemon = "nsenter -t \(d.pid) -m -- "
        var mounted = false
        defer { if mounted { _ = try? sh(inDaemon + "umount -l '\(d.stateDir)'", in: "/", allowFailure: true) } }
        try sh(inDaemon + "mount --bind '\(d.stateDir)' '\(d.stateDir)' && " + inDaemon + "mount -o remount,bind,ro '\(d.stateDir)'", in: "/")
        mounted = true

        let refused = try d.response("transfer.start", start)
        let error = try #require(refused["error"], "transfer.start must fail: \(refused)")
        #expect(error["data"]?["reason"] == "state_unwritable", "\(error)")
        let message = error["message"]?.stringValue ?? ""
        #expect(message.contains("transfers") && message.contains("Read-only file system") && message.contains("nothing was changed"), "\(message)")
        #expect(try d.call("transfer.list")["total"]?.intValue == 0, "nothing queued in memory either")
        try FaultChecks.expectServing(d)

        try sh(inDaemon + "umount '\(d.stateDir)'", in: "/")
        mounted = false
        #expect(try d.call("transfer.start", start)["transfers"]?.arrayValue?.count == 1)
        #expect(d.terminate() == 0)
        let again = try DaemonProcess(stateDir: d.stateDir, socketPath: d.socketPath)
        d.keepsDirectory = true
        again.alsoRemove = [d.dir]
        #expect(try again.call("transfer.list")["total"]?.intValue == 1, "the queued transfer survived the restart")
    }
}
