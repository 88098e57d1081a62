#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// Fault injection in the receiving repository's storage (root: mounts): its .git/annex on a
/// tmpfs too small for the content (disk_full), and its object store mounted read-only
/// (io_error naming the path and the errno). Each time the partial is kept, the daemon
/// serves on, and once the storage is fixed the transfer finishes from the partial.
/// (EIO itself: device-mapper's error target is not available here, so
/// TransferFailureCodeTests shows how an EIO from the store is reported.)
@Suite(.serialized, .timeLimit(.minutes(10))) struct FaultStorageTests {
    /// Mounts (a list of shell commands run in the client) and undoes them at the end.
    final class Mounts {
        var points: [String] = []
        func unmountAll() {
            for p in points.reversed() { _ = try? sh("umount -l '\(p)'", in: "/", allowFailure: true) }
            points = []
        }
        deinit { unmountAll() }
    }

    @Test(.enabled(if: FaultChecks.isRoot, "mounting a small tmpfs needs root"))
    func diskFullWhileReceivingKeepsThePartialAndTheRetryFinishes() throws {
        let mounts = Mounts()
        let size = 16 << 20
        let f = try TransferFixture(files: ["big": size, "small": 100_000]) { client in
            // The clone's .git/annex, moved onto an 8 MiB tmpfs.
            try sh("""
                mv .git/annex .git/annex.orig && mkdir .git/annex
                mount -t tmpfs -o size=8m annexd-fault-full .git/annex
                cp -a .git/annex.orig/. .git/annex/ && rm -rf .git/annex.orig
                """, in: client)
            mounts.points.append(client + "/.git/annex")
        }
        defer { mounts.unmountAll() }
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

    @Test(.enabled(if: FaultChecks.isRoot, "a read-only bind mount needs root (and root ignores chmod)"))
    func readOnlyObjectStoreIsAnIOErrorAndTheRetryFinishes() throws {
        let mounts = Mounts()
        let f = try TransferFixture(files: ["big": 4 << 20]) { client in
            try sh("""
                mkdir -p .git/annex/objects
                mount --bind .git/annex/objects .git/annex/objects
                mount -o remount,bind,ro .git/annex/objects
                """, in: client)
            mounts.points.append(client + "/.git/annex/objects")
        }
        defer { mounts.unmountAll() }
        let key = try f.key("big")
        _ = try f.daemon.process.call("settings.set", ["retry_delay": 1, "retries": 20])
        let id = try f.start("get", paths: ["big"])[0]["id"]!.stringValue!
        let failed = try f.wait(id, timeout: 30, until: { $0["error"]?["code"]?.stringValue != nil || $0["state"]?.stringValue == "done" })
        #expect(failed["error"]?["code"]?.stringValue == "io_error", "\(failed)")
        let message = failed["error"]?["message"]?.stringValue ?? ""
        #expect(message.contains("Read-only file system") && message.contains("/.git/annex/objects"), "names the errno and the path: \(message)")
        #expect(failed["state"]?.stringValue == "queued", "retried: \(failed)")
        #expect(Posix.fileSize(f.client + "/.git/annex/tmp/" + key) == 4 << 20, "the verified content waits as the partial")
        try FaultChecks.expectServing(f.daemon.process)

        mounts.unmountAll()
        let end = try f.wait(id, timeout: 90)
        #expect(end["state"]?.stringValue == "done", "\(end)")
        #expect(sameBytes(f.client + "/big", f.server + "/big"))
        #expect(try f.whereis(key, in: f.client).contains(f.clientUUID))
    }
}
