#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// Fault injection in the receiving repository's storage (root): its .git/annex on a tmpfs too
/// small for the content (disk_full), and its object store immutable (chattr +i: even root is
/// denied; io_error naming the path and the errno). Each time the partial is kept, the daemon
/// serves on, and once the storage is fixed the transfer finishes from the partial.
/// (EIO itself: device-mapper's error target is not available here, so
/// TransferFailureCodeTests shows how an EIO from the store is reported.)
@Suite(.serialized, .timeLimit(.minutes(10))) struct FaultStorageTests {
    /// What a test did to the storage, undone at the end (shell commands, last first).
    final class Undo {
        var undo: [String] = []
        func undoAll() {
            for command in undo.reversed() { _ = try? sh(command, in: "/", allowFailure: true) }
            undo = []
        }
        deinit { undoAll() }
    }

    @Test(.enabled(if: FaultChecks.isRoot, "mounting a small tmpfs needs root"))
    func diskFullWhileReceivingKeepsThePartialAndTheRetryFinishes() throws {
        let mounts = Undo()
        let size = 16 << 20
        let f = try TransferFixture(files: ["big": size, "small": 100_000]) { client in
            // The clone's .git/annex, moved onto an 8 MiB tmpfs.
            try sh("""
                mv .git/annex .git/annex.orig && mkdir .git/annex
                mount -t tmpfs -o size=8m annexd-fault-full .git/annex
                cp -a .git/annex.orig/. .git/annex/ && rm -rf .git/annex.orig
                """, in: client)
            mounts.undo.append("umount -l '\(client)/.git/annex'")
        }
        defer { mounts.undoAll() }
        let key = try f.key("big")
        let id = try f.start("get", paths: ["big"])[0]["id"]!.stringValue!
        let failed = try f.wait(id, timeout: 30, until: { $0["error"]?["code"]?.stringValue != nil || $0["state"]?.stringValue == "done" })
        #expect(failed["error"]?["code"]?.stringValue == "disk_full", "\(failed)")
        let message = failed["error"]?["message"]?.stringValue ?? ""
        #expect(message.contains("No space left on device") && message.contains("the partial is kept"), "\(message)")
        #expect(failed["state"]?.stringValue == "failed" && failed["next_retry"] == nil,
                "a full disk is not retried by itself: \(failed)")
        let kept = Posix.fileSize(f.client + "/.git/annex/tmp/" + key) ?? 0
        #expect(kept > 4 << 20 && kept < Int64(size), "partial of \(kept) bytes")
        #expect(!sameBytes(f.client + "/big", f.server + "/big"))
        try FaultChecks.expectServing(f.daemon.process)
        let listed = try f.daemon.process.call("transfer.list", ["repo": .string(f.client)])
        #expect(listed["transfers"]?.arrayValue?.count == 1, "\(listed)")

        // Space freed: the retry resumes from the partial, and other gets work.
        try sh("mount -o remount,size=64m .git/annex", in: f.client)
        _ = try f.daemon.process.call("transfer.retry", ["ids": [.string(id)]])
        let end = try f.wait(id, timeout: 60)
        #expect(end["state"]?.stringValue == "done", "\(end)")
        #expect(end["resumed_from"]?.intValue == kept, "resumed from the partial: \(end)")
        #expect(sameBytes(f.client + "/big", f.server + "/big"))
        #expect(try f.whereis(key, in: f.client).contains(f.clientUUID))
        let small = try f.start("get", paths: ["small"])[0]["id"]!.stringValue!
        #expect(try f.wait(small)["state"]?.stringValue == "done")
        #expect(sameBytes(f.client + "/small", f.server + "/small"))
    }

    @Test(.enabled(if: FaultChecks.isRoot, "chattr +i needs root (and root ignores chmod)"))
    func immutableObjectStoreIsAnIOErrorAndTheRetryFinishes() throws {
        let objects = Undo()
        let f = try TransferFixture(files: ["big": 4 << 20]) { client in
            // Immutable: not even root may create the key's directory in it (EPERM).
            try sh("mkdir -p .git/annex/objects && chattr +i .git/annex/objects", in: client)
            objects.undo.append("chattr -i '\(client)/.git/annex/objects'")
        }
        defer { objects.undoAll() }
        let key = try f.key("big")
        _ = try f.daemon.process.call("settings.set", ["retry_delay": 1, "retries": 20])
        let id = try f.start("get", paths: ["big"])[0]["id"]!.stringValue!
        let failed = try f.wait(id, timeout: 30, until: { $0["error"]?["code"]?.stringValue != nil || $0["state"]?.stringValue == "done" })
        #expect(failed["error"]?["code"]?.stringValue == "io_error", "\(failed)")
        let message = failed["error"]?["message"]?.stringValue ?? ""
        #expect(message.contains("Operation not permitted") && message.contains("/.git/annex/objects"), "names the errno and the path: \(message)")
        #expect(failed["state"]?.stringValue == "queued", "retried: \(failed)")
        #expect(Posix.fileSize(f.client + "/.git/annex/tmp/" + key) == 4 << 20, "the verified content waits as the partial")
        #expect(!sameBytes(f.client + "/big", f.server + "/big"))
        try FaultChecks.expectServing(f.daemon.process)

        objects.undoAll()
        let end = try f.wait(id, timeout: 90)
        #expect(end["state"]?.stringValue == "done", "\(end)")
        #expect(sameBytes(f.client + "/big", f.server + "/big"))
        #expect(try f.whereis(key, in: f.client).contains(f.clientUUID))
    }
}
