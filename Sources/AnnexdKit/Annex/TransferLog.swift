import Foundation
import Shared
import Synchronization

/// git-annex's transfer information and lock files, written and honoured by annexd,
/// so that `git annex info` lists annexd's transfers, and git-annex and annexd never
/// run the same transfer at once (Logs/Transfer.hs, Annex/Transfer.hs, Annex/Locations.hs).
///
/// Verified against Debian's git-annex 10.20230126 and PyPI's 10.20261026 (a slow
/// `git annex get` over a throttled ssh remote, /proc/locks, and a failed get):
///
/// - Information file: `.git/annex/transfer/<download|upload>/<uuid>/<keyFile>`, mode
///   0644: `1796460704.876369057s 786048\nbig.bin\n` — start time as Haskell shows a
///   POSIXTime, a space and the bytes done (absent at first), then the associated file
///   relative to the work tree top. Both versions. The pid is not stored (unix): readers
///   F_GETLK the lock. Bytes are updated in place every 1% of the key's size.
/// - Lock: POSIX fcntl write lock on the whole file (`POSIX ADVISORY WRITE … 0 EOF` in
///   /proc/locks), taken without waiting, on an empty file created beside it; not flock.
///   - 10.20230126: `transfer/<direction>/<uuid>/lck.<keyFile>` only. So it keeps two
///     downloads of a key apart only when they come from the same remote.
///   - 10.20240228 and later (10.20261026 verified): uploads as above; downloads lock
///     `transfer/download/lck/lck.<keyFile>` (no uuid: one download of a key at a time)
///     and then, for the old versions' sake, `transfer/download/<uuid>/lck.<keyFile>`.
///   annexd takes the same files in the same order, so each version sees it as its own.
/// - Refusal: `transfer already in progress, or unable to take transfer lock` (both).
/// - After a transfer: the information and lock files are deleted, lock file first
///   while still locked; directories stay. A lock file that exists but is not locked is
///   stale: git-annex's `info` deletes it with its information file.
/// - Failed: `transfer/failed/<direction>/<uuid>/<keyFile>`, the information as it was at
///   the start (time, no bytes, file); a later success deletes it. `git annex get --failed`
///   (both versions) reads it and retries the key.
///
/// annexd's own transfers are kept apart too: fcntl locks do not conflict within a
/// process, so `TransferLockTable` refuses a second holder here.
public struct TransferLog: Sendable {
    /// `.git/annex/transfer`, its parent resolved once so that every path to one lock
    /// file is spelled the same (the lock table keys on it).
    public let directory: String

    public init(repo: AnnexRepo) {
        directory = (Posix.realpath(repo.annexDir) ?? repo.annexDir) + "/transfer"
    }

    public func infoFile(_ t: AnnexTransfer) -> String {
        "\(directory)/\(t.direction.rawValue)/\(t.remoteUUID)/\(HashDirs.keyFile(t.key))"
    }

    /// The lock files git-annex takes for the transfer, in its locking order.
    public func lockFiles(_ t: AnnexTransfer) -> [String] {
        let name = "lck." + HashDirs.keyFile(t.key)
        let perUUID = "\(directory)/\(t.direction.rawValue)/\(t.remoteUUID)/\(name)"
        switch t.direction {
        case .upload: return [perUUID]
        case .download: return ["\(directory)/download/lck/\(name)", perUUID]
        }
    }

    public func failedFile(_ t: AnnexTransfer) -> String {
        "\(directory)/failed/\(t.direction.rawValue)/\(t.remoteUUID)/\(HashDirs.keyFile(t.key))"
    }

    /// Starts a transfer: takes its locks and writes its information file. Throws
    /// `.inProgress` if git-annex or annexd is already running it.
    public func begin(_ direction: AnnexTransfer.Direction, remoteUUID: String, key: AnnexKey,
                      file: String?) throws -> Active {
        guard AnnexTransfer.isValidUUID(remoteUUID) else { throw TransferLogError.invalidRemoteUUID(remoteUUID) }
        let t = AnnexTransfer(direction, remoteUUID: remoteUUID, key: key)
        let locks = lockFiles(t)
        var taken: [String] = []
        do {
            for lock in locks {
                try Posix.makeDirectories(Posix.dirname(lock))
                guard try TransferLockTable.shared.tryLockExclusive(lock) else {
                    throw TransferLogError.inProgress(t)
                }
                taken.append(lock)
            }
        } catch {
            for lock in taken.reversed() { TransferLockTable.shared.unlock(lock, removeFile: false) }
            if let e = error as? TransferLogError { throw e }
            throw TransferLogError.io(error)
        }
        let active = Active(log: self, transfer: t, locks: locks, info: .startingNow(file: file))
        do {
            try Self.write(active.startInfo.serialized, to: infoFile(t))
        } catch {
            active.abandon()
            throw TransferLogError.io(error)
        }
        return active
    }

    /// Transfers running now (by git-annex or annexd): those whose lock is held.
    public func inProgress() -> [TransferRecord] {
        var out: [TransferRecord] = []
        for direction in AnnexTransfer.Direction.allCases {
            let dir = "\(directory)/\(direction.rawValue)"
            for uuid in Self.names(in: dir) where uuid != "lck" && AnnexTransfer.isValidUUID(uuid) {
                for name in Self.names(in: dir + "/" + uuid) where !name.hasPrefix("lck.") {
                    guard let key = HashDirs.fileKey(name) else { continue }
                    let t = AnnexTransfer(direction, remoteUUID: uuid, key: key)
                    guard let pid = lockFiles(t).lazy.compactMap({ TransferLockTable.shared.holder(of: $0) }).first,
                          let text = try? String(contentsOfFile: dir + "/" + uuid + "/" + name, encoding: .utf8),
                          let info = AnnexTransferInfo(parsing: text, pid: pid) else { continue }
                    out.append(TransferRecord(transfer: t, info: info))
                }
            }
        }
        return out
    }

    /// Failed transfers recorded for a remote (Logs/Transfer.hs getFailedTransfers).
    public func failed(remoteUUID: String) -> [TransferRecord] {
        guard AnnexTransfer.isValidUUID(remoteUUID) else { return [] }
        return AnnexTransfer.Direction.allCases.flatMap { direction -> [TransferRecord] in
            let dir = "\(directory)/failed/\(direction.rawValue)/\(remoteUUID)"
            return Self.names(in: dir).compactMap { name in
                guard let key = HashDirs.fileKey(name),
                      let text = try? String(contentsOfFile: dir + "/" + name, encoding: .utf8),
                      let info = AnnexTransferInfo(parsing: text) else { return nil }
                return TransferRecord(transfer: AnnexTransfer(direction, remoteUUID: remoteUUID, key: key), info: info)
            }
        }
    }

    private static func names(in dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    /// Writes a whole file in place (git-annex updates information files in place too).
    static func write(_ text: String, to path: String) throws {
        try Posix.makeDirectories(Posix.dirname(path))
        let fd = try Posix.check("open", path: path) { open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666) }
        defer { close(fd) }
        try Array(text.utf8).withUnsafeBytes { try Posix.writeAll(fd: fd, $0, what: path) }
    }

    /// A running transfer: its locks are held until `finish`.
    public final class Active: Sendable {
        public let transfer: AnnexTransfer
        let startInfo: AnnexTransferInfo
        private let log: TransferLog
        private let locks: [String]
        private let state = Mutex<(finished: Bool, lastWrite: ContinuousClock.Instant?)>((false, nil))

        fileprivate init(log: TransferLog, transfer: AnnexTransfer, locks: [String], info: AnnexTransferInfo) {
            self.log = log
            self.transfer = transfer
            self.locks = locks
            startInfo = info
        }

        /// Records the bytes done so far in the information file, at most once per
        /// `interval` (the last update of a transfer can pass `interval: .zero`).
        public func progress(bytes: Int64, interval: Duration = .seconds(1)) {
            let now = ContinuousClock.now
            let due = state.withLock { s -> Bool in
                guard !s.finished else { return false }
                if let last = s.lastWrite, now - last < interval { return false }
                s.lastWrite = now
                return true
            }
            guard due else { return }
            var info = startInfo
            info.bytesComplete = bytes
            // As git-annex: a failed progress update does not fail the transfer.
            try? TransferLog.write(info.serialized, to: log.infoFile(transfer))
        }

        /// Ends the transfer: deletes its information and lock files and drops the locks.
        /// A failure is recorded in `failed/` (for `git annex get --failed`); a success
        /// clears an earlier failure record.
        public func finish(success: Bool) throws {
            guard release() else { return }
            let failed = log.failedFile(transfer)
            if success {
                if unlink(failed) != 0 && errno != ENOENT { throw TransferLogError.io(SystemError("unlink", path: failed)) }
            } else {
                do { try TransferLog.write(startInfo.serialized, to: failed) } catch { throw TransferLogError.io(error) }
            }
        }

        /// Ends the transfer without recording an outcome (also done when dropped unfinished).
        public func abandon() { _ = release() }

        private func release() -> Bool {
            guard state.withLock({ s in defer { s.finished = true }; return !s.finished }) else { return false }
            unlink(log.infoFile(transfer))
            for lock in locks.reversed() { TransferLockTable.shared.unlock(lock, removeFile: true) }
            return true
        }

        deinit { abandon() }
    }
}

public enum TransferLogError: Error, CustomStringConvertible {
    /// Another process (git-annex, or another transfer in annexd) holds the transfer's lock.
    case inProgress(AnnexTransfer)
    case invalidRemoteUUID(String)
    case io(any Error)

    public var description: String {
        switch self {
        case .inProgress(let t): return "\(t) is already in progress (its git-annex transfer lock is held)"
        case .invalidRemoteUUID(let u): return "invalid remote UUID \"\(KeyError.printable(u))\""
        case .io(let e): return "transfer log: \(e)"
        }
    }
}
