import Foundation
import Testing
@testable import AnnexdKit
import Shared

/// annexd's transfer log and stock git-annex's, on the same repository, for both
/// git-annex versions: each sees the other's transfers, neither runs a download the
/// other is running, and a transfer killed by SIGKILL leaves no lock behind.
@Suite(.timeLimit(minutes: 10)) struct TransferLogInteropTests {
    static let versions = TestEnvironment.gitAnnexVersions

    @Test(arguments: versions)
    func gitAnnexInfoListsAnnexdsDownload(annex: TestEnvironment.GitAnnex) throws {
        let s = try TransferSetup(annex: annex)
        let active = try s.log.begin(.download, remoteUUID: s.serverUUID, key: s.key, file: "f.bin")
        active.progress(bytes: 1234, interval: .zero)

        let listed = try s.transfersInProgress()
        #expect(listed.count == 1, "\(listed)")
        #expect(listed.first?["transfer"] as? String == "download")
        #expect(listed.first?["key"] as? String == s.key.serialized)
        #expect(listed.first?["remote"] as? String == s.serverUUID)
        #expect(listed.first?["file"] as? String == "f.bin")
        let text = try sh("git annex info", in: s.client, annex: annex)
        #expect(text.contains("downloading f.bin from origin"), "\(text)")
        // annexd reads back what it wrote, with its own pid from the lock.
        let own = s.log.inProgress()
        #expect(own.map(\.transfer) == [AnnexTransfer(.download, remoteUUID: s.serverUUID, key: s.key)])
        #expect(own.first?.info.bytesComplete == 1234)
        #expect(own.first?.info.pid == getpid())

        try active.finish(success: true)
        #expect(try s.transfersInProgress().isEmpty)
        #expect(s.filesUnder(s.log.directory).isEmpty, "\(s.filesUnder(s.log.directory))")
    }

    @Test(arguments: versions)
    func stockGetRefusesWhileAnnexdDownloads(annex: TestEnvironment.GitAnnex) throws {
        let s = try TransferSetup(annex: annex)
        let active = try s.log.begin(.download, remoteUUID: s.serverUUID, key: s.key, file: "f.bin")
        let refused = try sh("git annex get f.bin", in: s.client, annex: annex, allowFailure: true)
        #expect(refused.contains("transfer already in progress"), "\(refused)")
        #expect(!s.hasContent)

        try active.finish(success: true)
        try sh("git annex get f.bin", in: s.client, annex: annex)
        #expect(s.hasContent)
    }

    /// A real stock `git annex get`, slowed by a throttled ssh remote, holds the lock;
    /// then it is SIGKILLed, and its lock dies with it.
    @Test(arguments: versions)
    func annexdRefusesWhileStockGetRunsAndProceedsAfterItIsKilled(annex: TestEnvironment.GitAnnex) throws {
        let s = try TransferSetup(annex: annex, slowSSH: true)
        let t = AnnexTransfer(.download, remoteUUID: s.serverUUID, key: s.key)
        let get = Process()
        get.executableURL = URL(fileURLWithPath: annex.gitAnnex)
        get.arguments = ["get", "f.bin"]
        get.currentDirectoryURL = URL(fileURLWithPath: s.client)
        get.environment = s.env
        get.standardInput = FileHandle.nullDevice
        get.standardOutput = FileHandle.nullDevice
        get.standardError = FileHandle.nullDevice
        try get.run()
        defer { if get.isRunning { kill(get.processIdentifier, SIGKILL) }; get.waitUntilExit() }

        // Running once annexd sees it: the lock held and the information written.
        let deadline = Date().addingTimeInterval(30)
        while s.log.inProgress().isEmpty && Date() < deadline { usleep(20_000) }
        let seen = s.log.inProgress()
        #expect(seen.map(\.transfer) == [t])
        #expect(seen.first?.info.pid == get.processIdentifier)
        #expect(seen.first?.info.file == "f.bin")
        #expect(Self.isInProgress { try s.log.begin(.download, remoteUUID: s.serverUUID, key: s.key, file: "f.bin") })
        #expect(get.isRunning, "the throttled get finished too soon to test anything")

        kill(get.processIdentifier, SIGKILL)
        get.waitUntilExit()
        let active = try s.log.begin(.download, remoteUUID: s.serverUUID, key: s.key, file: "f.bin")
        try active.finish(success: true)
    }

    /// A holder of the very locks annexd takes, SIGKILLed: its stale information file
    /// stays but blocks neither annexd nor git-annex, and is not listed as running.
    @Test(arguments: versions)
    func lockOfAKilledHolderDoesNotBlock(annex: TestEnvironment.GitAnnex) throws {
        let s = try TransferSetup(annex: annex)
        let t = AnnexTransfer(.download, remoteUUID: s.serverUUID, key: s.key)
        for lock in s.log.lockFiles(t) { try Posix.makeDirectories(Posix.dirname(lock)) }
        let holder = try LockHolder(lockFiles: s.log.lockFiles(t))
        try TransferLog.write(AnnexTransferInfo.startingNow(file: "f.bin").serialized, to: s.log.infoFile(t))
        #expect(Self.isInProgress { try s.log.begin(.download, remoteUUID: s.serverUUID, key: s.key, file: nil) })
        #expect(try s.transfersInProgress().count == 1)

        holder.stop()
        #expect(FileManager.default.fileExists(atPath: s.log.infoFile(t)))
        #expect(s.log.inProgress().isEmpty)
        #expect(try s.transfersInProgress().isEmpty)
        let active = try s.log.begin(.download, remoteUUID: s.serverUUID, key: s.key, file: "f.bin")
        try active.finish(success: true)

        // Nor do stale ones block a stock get.
        let again = try LockHolder(lockFiles: s.log.lockFiles(t))
        try TransferLog.write(AnnexTransferInfo.startingNow(file: "f.bin").serialized, to: s.log.infoFile(t))
        again.stop()
        try sh("git annex get f.bin", in: s.client, annex: annex)
        #expect(s.hasContent)
    }

    @Test(arguments: versions)
    func failedDownloadIsRecordedWhereGitAnnexRetriesIt(annex: TestEnvironment.GitAnnex) throws {
        let s = try TransferSetup(annex: annex)
        let t = AnnexTransfer(.download, remoteUUID: s.serverUUID, key: s.key)
        let active = try s.log.begin(.download, remoteUUID: s.serverUUID, key: s.key, file: "f.bin")
        try active.finish(success: false)
        #expect(s.log.failed(remoteUUID: s.serverUUID).map(\.transfer) == [t])
        #expect(s.log.failed(remoteUUID: s.serverUUID).first?.info.file == "f.bin")
        #expect(!FileManager.default.fileExists(atPath: s.log.infoFile(t)))

        // git-annex finds the failure annexd recorded, retries it, and clears the record.
        let out = try sh("git annex get --failed --json", in: s.client, annex: annex)
        let line = out.split(separator: "\n").first { $0.hasPrefix("{") }.map(String.init) ?? ""
        let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        #expect(obj?["key"] as? String == s.key.serialized, "\(out)")
        #expect(obj?["success"] as? Bool == true, "\(out)")
        #expect(s.hasContent)
        #expect(!FileManager.default.fileExists(atPath: s.log.failedFile(t)))

        // And annexd's own success clears a failure record too.
        try TransferLog.write("1s\nf.bin\n", to: s.log.failedFile(t))
        try s.log.begin(.download, remoteUUID: s.serverUUID, key: s.key, file: "f.bin").finish(success: true)
        #expect(s.log.failed(remoteUUID: s.serverUUID).isEmpty)
    }

    /// fcntl locks never conflict within one process: annexd's lock table keeps its
    /// own transfers apart, the way git-annex's locks keep processes apart.
    @Test func annexdsOwnTransfersExcludeEachOther() throws {
        let s = try TransferSetup(annex: Self.versions[1])
        let other = "00000000-0000-0000-0000-000000000001"
        let a = try s.log.begin(.download, remoteUUID: s.serverUUID, key: s.key, file: nil)
        #expect(Self.isInProgress { try s.log.begin(.download, remoteUUID: s.serverUUID, key: s.key, file: nil) })
        // One download of a key at a time, whichever remote it comes from.
        #expect(Self.isInProgress { try s.log.begin(.download, remoteUUID: other, key: s.key, file: nil) })
        // Uploads are per remote.
        let up1 = try s.log.begin(.upload, remoteUUID: s.serverUUID, key: s.key, file: nil)
        let up2 = try s.log.begin(.upload, remoteUUID: other, key: s.key, file: nil)
        #expect(Self.isInProgress { try s.log.begin(.upload, remoteUUID: other, key: s.key, file: nil) })
        // Listing opens lock files; it must not drop the locks held here.
        #expect(s.log.inProgress().count == 3)
        #expect(Self.isInProgress { try s.log.begin(.download, remoteUUID: s.serverUUID, key: s.key, file: nil) })
        a.abandon()
        try s.log.begin(.download, remoteUUID: other, key: s.key, file: nil).finish(success: true)
        try up1.finish(success: true)
        try up2.finish(success: true)
        #expect(throws: TransferLogError.self) { try s.log.begin(.upload, remoteUUID: "../x", key: s.key, file: nil) }
    }

    static func isInProgress(_ body: () throws -> TransferLog.Active) -> Bool {
        do {
            _ = try body()
            return false
        } catch TransferLogError.inProgress {
            return true
        } catch {
            return false
        }
    }
}

/// A `server` repository holding `f.bin` and its clone `client` (remote `origin`, a
/// plain local directory, or ssh through a throttled fake ssh), with annexd's
/// transfer log on the client.
struct TransferSetup {
    let scratch: Scratch
    let annex: TestEnvironment.GitAnnex
    let key: AnnexKey
    let serverUUID: String
    let log: TransferLog
    let env: [String: String]
    var client: String { scratch.path + "/client" }

    init(annex: TestEnvironment.GitAnnex, slowSSH: Bool = false) throws {
        self.annex = annex
        scratch = Scratch("annexd-transfer-\(annex.name)")
        let root = scratch.path
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = annex.binDir + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        if slowSSH {
            env["GIT_SSH_COMMAND"] = try Self.writeSlowSSH(in: root)
            env["GIT_ANNEX_USE_GIT_SSH"] = "1"
        }
        self.env = env
        // 2 MB: about ten seconds through the throttle.
        try sh("git init -q server && cd server && git annex init -q server && head -c 2000000 /dev/urandom > f.bin"
               + " && git annex add -q f.bin && git commit -qm f", in: root, annex: annex)
        let url = slowSSH ? "ssh://localhost\(root)/server" : "\(root)/server"
        try sh("git clone -q \(url) client && cd client && git annex init -q client", in: root, annex: annex, env: env)
        key = try AnnexKey(parsing: sh("git annex lookupkey f.bin", in: root + "/server", annex: annex)
            .trimmingCharacters(in: .whitespacesAndNewlines))
        serverUUID = try sh("git config annex.uuid", in: root + "/server").trimmingCharacters(in: .whitespacesAndNewlines)
        log = TransferLog(repo: try AnnexRepo(path: root + "/client"))
    }

    /// A GIT_SSH_COMMAND running the command locally, its p2pstdio output throttled to 200 kB/s.
    private static func writeSlowSSH(in dir: String) throws -> String {
        let path = dir + "/slow-ssh"
        let script = #"""
            #!/bin/sh
            while [ $# -gt 0 ]; do
              case "$1" in -o|-p|-l|-i|-F|-S|-O) shift 2 ;; -*) shift ;; *) break ;; esac
            done
            shift
            case "$*" in
              *p2pstdio*) sh -c "$*" | python3 -c '
            import os, time
            while True:
                b = os.read(0, 4096)
                if not b: break
                os.write(1, b)
                time.sleep(len(b) / 200000)
            ' ;;
              *) exec sh -c "$*" ;;
            esac
            """#
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    var hasContent: Bool {
        (try? sh("git annex find --in=here f.bin", in: client, annex: annex))?.contains("f.bin") == true
    }

    /// `git annex info --json`'s "transfers in progress".
    func transfersInProgress() throws -> [[String: Any]] {
        let out = try sh("git annex info --json", in: client, annex: annex)
        let line = out.split(separator: "\n").first { $0.hasPrefix("{") }.map(String.init) ?? ""
        let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        guard let list = obj?["transfers in progress"] as? [[String: Any]] else {
            throw ShellError(description: "no \"transfers in progress\" in git annex info --json: \(out)")
        }
        return list
    }

    /// Regular files under `dir` (relative paths).
    func filesUnder(_ dir: String) -> [String] {
        guard let e = FileManager.default.enumerator(atPath: dir) else { return [] }
        var out: [String] = []
        while let rel = e.nextObject() as? String {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir + "/" + rel, isDirectory: &isDir), !isDir.boolValue { out.append(rel) }
        }
        return out
    }
}
