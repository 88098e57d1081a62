#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// Fault injection in the receiving repository's storage (root): its .git/annex on a tmpfs too
/// small for the content (disk_full), its object store immutable (chattr +i: even root is
/// denied; io_error naming the path and the errno), and its .git/annex on an ext4 that the
/// kernel has shut down (every access a real EIO). Each time the daemon serves on, and once
/// the storage is fixed the transfer finishes (from the partial where one was kept).
@Suite(.serialized, .timeLimit(minutes: 10)) struct FaultStorageTests {
    /// What a test did to the storage, undone at the end (shell commands, last first).
    final class Undo {
        var undo: [String] = []
        func undoAll() {
            for command in undo.reversed() { _ = try? sh(command, in: "/", allowFailure: true) }
            undo = []
        }
        deinit { undoAll() }
    }

    /// Moves the clone's .git/annex onto the filesystem `mount` (a command run in the clone)
    /// mounts at .git/annex.
    static func moveAnnexDirectory(of client: String, onto mount: String) throws {
        try sh("""
            mv .git/annex .git/annex.orig && mkdir .git/annex
            \(mount)
            cp -a .git/annex.orig/. .git/annex/ && rm -rf .git/annex.orig
            """, in: client)
    }

    @Test(.enabled(if: FaultChecks.isRoot, "mounting a small tmpfs needs root"))
    func diskFullWhileReceivingKeepsThePartialAndTheRetryFinishes() throws {
        let mounts = Undo()
        let size = 16 << 20
        let f = try TransferFixture(files: ["big": size, "small": 100_000]) { client in
            // The clone's .git/annex, moved onto an 8 MiB tmpfs.
            try Self.moveAnnexDirectory(of: client, onto: "mount -t tmpfs -o size=8m annexd-fault-full .git/annex")
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

    static var canLoopMount: Bool {
        FaultChecks.isRoot && FileManager.default.fileExists(atPath: "/dev/loop-control")
            && (try? sh("command -v losetup mkfs.ext4", in: "/")) != nil
    }

    /// A real EIO: the client's .git/annex on an ext4 in a loop device, shut down by the
    /// kernel (EXT4_IOC_SHUTDOWN, as xfstests does; EXT4_GOING_FLAGS_DEFAULT writes everything out
    /// first, so what was on it is intact: with only the journal flushed, git-annex's index,
    /// copied there just before, came back short and git-annex could not read it). Every access then fails with "Input/output error": the get is an
    /// io_error naming the path, retried; the daemon serves on. The filesystem mounted again
    /// (annexd stopped for it, then started), the queued transfer finishes and verifies.
    @Test(.enabled(if: canLoopMount, "a loop-mounted ext4 needs root, /dev/loop-control, losetup and mkfs.ext4"))
    func aFilesystemGivingEIOIsAnIOErrorAndTheRetryFinishes() throws {
        let mounts = Undo()
        let scratch = Scratch("annexd-fault-eio")
        let image = scratch.path + "/annex.ext4"
        var loop = ""
        let f = try TransferFixture(files: ["big": 4 << 20]) { client in
            loop = try sh("truncate -s 64M '\(image)' && mkfs.ext4 -q -F '\(image)' && losetup -f --show '\(image)'", in: client)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            mounts.undo.append("losetup -d '\(loop)'")
            try Self.moveAnnexDirectory(of: client, onto: "mount '\(loop)' .git/annex")
            mounts.undo.append("umount -l '\(client)/.git/annex'")
        }
        defer { mounts.undoAll() }
        let annexDir = f.client + "/.git/annex"
        _ = try f.daemon.process.call("settings.set", ["retry_delay": 1, "retries": 20])
        try sh("""
            python3 -c 'import fcntl, os, struct; fd = os.open(".", os.O_RDONLY); fcntl.ioctl(fd, 0x8004587d, struct.pack("I", 0))'
            """, in: annexDir)
        let key = try f.key("big")
        let id = try f.start("get", paths: ["big"])[0]["id"]!.stringValue!
        let failed = try f.wait(id, timeout: 30, until: { $0["error"]?["code"]?.stringValue != nil || $0["state"]?.stringValue == "done" })
        #expect(failed["error"]?["code"]?.stringValue == "io_error", "\(failed)")
        let message = failed["error"]?["message"]?.stringValue ?? ""
        #expect(message.contains("Input/output error") && message.contains("/.git/annex"), "names the errno and the path: \(message)")
        #expect(failed["state"]?.stringValue == "queued", "retried: \(failed)")
        try FaultChecks.expectServing(f.daemon.process)

        // The repair a user would make: annexd stopped (its git-annex helpers hold files on the
        // filesystem, which cannot be unmounted before), the filesystem mounted again (the
        // journal replayed), annexd started: the queued transfer finishes.
        #expect(f.daemon.process.terminate() == 0)
        try sh("umount '\(annexDir)' && mount '\(loop)' '\(annexDir)'", in: "/")
        try f.daemon.start()
        // Retried now, as a user would after the repair (not at the backoff's next turn).
        _ = try f.daemon.process.call("transfer.retry", ["ids": [.string(id)]])
        let end = try f.wait(id, timeout: 90)
        #expect(end["state"]?.stringValue == "done", "\(end)")
        #expect(sameBytes(f.client + "/big", f.server + "/big"))
        #expect(try f.whereis(key, in: f.client).contains(f.clientUUID))
    }
}
