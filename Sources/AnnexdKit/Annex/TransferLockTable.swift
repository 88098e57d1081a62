#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Exclusive POSIX (fcntl) locks on git-annex transfer lock files, the kind
/// git-annex's `tryLockExclusive` takes: whole-file write locks, held on an open
/// descriptor, so the kernel drops them when the process dies (even by SIGKILL).
///
/// fcntl locks belong to the process: two holders in annexd would not conflict,
/// and closing any descriptor of a locked file drops the lock. So every open of a
/// transfer lock file in annexd goes through this table, under its mutex: a file
/// held here is never opened a second time, and a second holder here is refused.
final class TransferLockTable: Sendable {
    static let shared = TransferLockTable()

    /// Held lock files (canonical paths) and their descriptors.
    private let held = Mutex<[String: Int32]>([:])

    /// How often a lock is retried when the file it locked was deleted under it.
    private static let saneLockAttempts = 3

    /// Takes the exclusive lock without waiting, creating the file if needed.
    /// False if it is held, here or by another process.
    func tryLockExclusive(_ path: String) throws -> Bool {
        try held.withLock { table in
            if table[path] != nil { return false }
            for _ in 0..<Self.saneLockAttempts {
                let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
                if fd < 0 { throw SystemError("open", path: path) }
                var fl = Self.wholeFile(F_WRLCK)
                if fcntl(fd, F_SETLK, &fl) != 0 {
                    let err = errno
                    close(fd)
                    if err == EAGAIN || err == EACCES { return false }
                    throw SystemError("lock", path: path, errno: err)
                }
                // A stale-lock cleaner (git-annex's checkTransfer) may have deleted the
                // file between our open and lock: then the lock guards nothing (checkSaneLock).
                if Self.isSameFile(fd, path) {
                    table[path] = fd
                    return true
                }
                close(fd)
            }
            return false
        }
    }

    /// Drops a lock taken here; `removeFile` deletes the lock file first, as git-annex does.
    func unlock(_ path: String, removeFile: Bool) {
        held.withLock { table in
            guard let fd = table.removeValue(forKey: path) else { return }
            if removeFile { unlink(path) }
            close(fd)
        }
    }

    /// The process holding any lock on `path` (this one's pid for locks held here),
    /// nil when the file is missing or not locked.
    func holder(of path: String) -> pid_t? {
        held.withLock { table -> pid_t? in
            if table[path] != nil { return getpid() }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 { return nil }
            defer { close(fd) }
            var fl = Self.wholeFile(F_WRLCK)
            guard fcntl(fd, F_GETLK, &fl) == 0, fl.l_type != Int16(F_UNLCK) else { return nil }
            return fl.l_pid
        }
    }

    private static func wholeFile(_ type: Int32) -> flock {
        var fl = flock()
        fl.l_type = Int16(type)
        fl.l_whence = Int16(SEEK_SET)
        fl.l_start = 0
        fl.l_len = 0
        return fl
    }

    private static func isSameFile(_ fd: Int32, _ path: String) -> Bool {
        var a = stat(), b = stat()
        guard fstat(fd, &a) == 0, stat(path, &b) == 0 else { return false }
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino
    }
}
