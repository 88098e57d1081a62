import Foundation
import Testing
@testable import AnnexdKit

/// annexd's content locks and stock git-annex's, on the same repository: a
/// LOCKCONTENT held by annexd stops `git annex drop`, and a lock git-annex
/// holds for a drop stops annexd from locking, removing or serving the content.
@Suite(.timeLimit(minutes: 10)) struct ContentLockInteropTests {
    static let versions = TestEnvironment.gitAnnexVersions
    static let content = bytes("locked content\n")

    private func makeRepo(_ annex: TestEnvironment.GitAnnex) throws -> (TestRepo, key: String, object: String) {
        let repo = try TestRepo(annex: annex, name: "annexd-lock-\(annex.name)")
        let key = try repo.addFile("f", Self.content)
        return (repo, key, try repo.objectPath(key))
    }

    @Test(arguments: versions)
    func lockContentStopsDropUntilUnlocked(annex: TestEnvironment.GitAnnex) throws {
        let (repo, key, object) = try makeRepo(annex)
        let p = try repo.session()
        #expect(try p.request("VERSION 1") == "VERSION 1")
        #expect(try p.request("LOCKCONTENT \(key)") == "SUCCESS")
        // annexd also writes git-annex's retention file, 10 minutes ahead.
        #expect(FileManager.default.fileExists(atPath: object + ".rtm"))

        let held = try repo.run("git annex drop --force f")
        #expect(held.status != 0, "drop succeeded while annexd held the lock: \(held.output)")
        #expect(held.output.contains("locked"), "\(held.output)")
        #expect(repo.contents(object) == Self.content)

        // UNLOCKCONTENT has no answer; the next request shows it was handled.
        try p.send("UNLOCKCONTENT")
        #expect(try p.request("CHECKPRESENT \(key)") == "SUCCESS")
        // The retention annexd wrote is withdrawn with the lock, so the new git-annex's drop is not held back by it.
        #expect(!FileManager.default.fileExists(atPath: object + ".rtm"))

        let after = try repo.run("git annex drop --force f")
        #expect(after.status == 0, "\(after.output)")
        #expect(!FileManager.default.fileExists(atPath: object))
        #expect(try p.request("CHECKPRESENT \(key)") == "FAILURE")
        p.closeStdin()
        #expect(try p.waitForExit() == 0)
    }

    /// A connection that dies while holding LOCKCONTENT loses the fcntl lock with the
    /// process, but the retention file stays for 10 minutes (the protocol's promise).
    /// Only git-annex versions that know retention files (the PyPI one) honour it.
    @Test(arguments: versions)
    func lockOfADroppedConnectionIsRetained(annex: TestEnvironment.GitAnnex) throws {
        let (repo, key, object) = try makeRepo(annex)
        let p = try repo.session()
        #expect(try p.request("VERSION 1") == "VERSION 1")
        #expect(try p.request("LOCKCONTENT \(key)") == "SUCCESS")
        p.closeStdin()
        #expect(try p.waitForExit() == 0)
        #expect(FileManager.default.fileExists(atPath: object + ".rtm"))

        // annexd's own REMOVE honours it, whatever git-annex version made the repo.
        let q = try repo.session()
        #expect(try q.request("VERSION 1") == "VERSION 1")
        #expect(try q.request("REMOVE \(key)") == "FAILURE")
        q.closeStdin()
        #expect(try q.waitForExit() == 0)
        #expect(repo.contents(object) == Self.content)

        let drop = try repo.run("git annex drop --force f")
        switch annex.name {
        case "debian":
            // 10.20230126 predates retention files: only the (released) fcntl lock counts.
            #expect(drop.status == 0, "\(drop.output)")
            #expect(!FileManager.default.fileExists(atPath: object))
        default:
            #expect(drop.status != 0, "drop ignored the retention file: \(drop.output)")
            #expect(drop.output.contains("locked"), "\(drop.output)")
            #expect(repo.contents(object) == Self.content)
        }
    }

    /// git-annex's drop holds an exclusive lock on the `.lck` file; while anyone
    /// does, annexd must neither lock, remove nor serve the content.
    @Test func exclusiveLockHeldElsewhereBlocksAnnexd() throws {
        let (repo, key, object) = try makeRepo(TestEnvironment.gitAnnexVersions[0])
        let holder = try LockHolder(lockFile: object + ".lck")
        defer { holder.stop() }

        let p = try repo.session()
        #expect(try p.request("VERSION 1") == "VERSION 1")
        #expect(try p.request("LOCKCONTENT \(key)") == "FAILURE")
        #expect(try p.request("REMOVE \(key)") == "FAILURE")
        #expect(try p.request("GET 0 f \(key)") == "DATA 0")
        #expect(try p.readLine() == "INVALID")
        try p.send("FAILURE")
        // Presence is a plain question and is still answered truthfully.
        #expect(try p.request("CHECKPRESENT \(key)") == "SUCCESS")
        #expect(repo.contents(object) == Self.content)

        // Once the lock is gone, all of it works again.
        holder.stop()
        #expect(try p.request("GET 0 f \(key)") == "DATA \(Self.content.count)")
        #expect(try p.readBytes(Self.content.count) == Self.content)
        #expect(try p.readLine() == "VALID")
        try p.send("SUCCESS")
        #expect(try p.request("LOCKCONTENT \(key)") == "SUCCESS")
        try p.send("UNLOCKCONTENT")
        #expect(try p.request("REMOVE \(key)") == "SUCCESS")
        #expect(!FileManager.default.fileExists(atPath: object))
        p.closeStdin()
        #expect(try p.waitForExit() == 0)
    }
}

/// A python3 child holding exclusive POSIX (fcntl) locks on files, as git-annex's drop
/// (and its transfers) do; SIGKILLed by `stop()`.
final class LockHolder {
    let process = Process()
    private let output = Pipe()
    private var stopped = false

    convenience init(lockFile: String) throws { try self.init(lockFiles: [lockFile]) }

    init(lockFiles: [String]) throws {
        // Creates each lock file if needed (in a key directory git-annex left read-only),
        // locks them in order, says so, and holds the locks until killed (at most two minutes).
        let script = """
            import fcntl, os, sys, time
            held = []
            for path in sys.argv[1:]:
                d = os.path.dirname(path)
                mode = os.stat(d).st_mode
                os.chmod(d, mode | 0o200)
                f = open(path, "a+")
                os.chmod(d, mode)
                fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held.append(f)
            print("locked", flush=True)
            time.sleep(120)
            """
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + lockFiles
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        try process.run()
        let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        guard line.hasPrefix("locked") else {
            stop()
            throw ShellError(description: "lock holder failed to lock \(lockFiles): \(line.debugDescription)")
        }
    }

    /// Releases the lock by ending the child (the kernel drops its POSIX locks).
    func stop() {
        guard !stopped else { return }
        stopped = true
        // SIGKILL: children spawned from test threads inherit a mask blocking SIGTERM.
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}
