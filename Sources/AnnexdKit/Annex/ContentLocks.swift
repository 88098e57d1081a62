#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Content locks interoperable with git-annex's: POSIX record locks on the
/// key's `.lck` file, shared while content is served or held for LOCKCONTENT,
/// exclusive while it is removed (exactly what `git annex drop` takes).
///
/// POSIX locks belong to the process, and closing any descriptor of a file
/// drops all of the process's locks on it, so annexd keeps one descriptor per
/// lock file here and counts its own holders.
public final class ContentLockTable: Sendable {
    public static let shared = ContentLockTable()

    private struct Entry {
        var fd: Int32
        var sharedHolders: Int
        var exclusive: Bool
    }

    private let entries = Mutex<[String: Entry]>([:])

    public init() {}

    public enum Mode: Sendable { case shared, exclusive }

    /// Takes the lock without waiting; nil if another holder (here or in another process) conflicts.
    public func tryLock(_ path: String, _ mode: Mode) throws -> ContentLock? {
        try entries.withLock { table -> ContentLock? in
            if var e = table[path] {
                guard mode == .shared, !e.exclusive else { return nil }
                e.sharedHolders += 1
                table[path] = e
                return ContentLock(table: self, path: path, mode: mode)
            }
            let fd = try Self.openLockFile(path, mode)
            var fl = flock()
            fl.l_type = Int16(mode == .shared ? F_RDLCK : F_WRLCK)
            fl.l_whence = Int16(SEEK_SET)
            fl.l_start = 0
            fl.l_len = 0
            if fcntl(fd, F_SETLK, &fl) != 0 {
                let err = errno
                close(fd)
                if err == EAGAIN || err == EACCES { return nil }
                throw SystemError("lock", path: path, errno: err)
            }
            table[path] = Entry(fd: fd, sharedHolders: mode == .shared ? 1 : 0, exclusive: mode == .exclusive)
            return ContentLock(table: self, path: path, mode: mode)
        }
    }

    fileprivate func release(_ path: String, _ mode: Mode, removeFile: Bool) {
        entries.withLock { table in
            guard var e = table[path] else { return }
            if mode == .shared {
                e.sharedHolders -= 1
                if e.sharedHolders > 0 { table[path] = e; return }
            }
            if removeFile { unlink(path) }
            close(e.fd)
            table[path] = nil
        }
    }

    /// Opens (creating if needed) a lock file in a key directory git-annex may have made read-only.
    private static func openLockFile(_ path: String, _ mode: Mode) throws -> Int32 {
        let flags = (mode == .shared ? O_RDONLY : O_RDWR) | O_CLOEXEC
        var fd = open(path, flags)
        if fd >= 0 { return fd }
        guard errno == ENOENT else { throw SystemError("open", path: path) }
        let dir = Posix.dirname(path)
        var st = stat()
        guard stat(dir, &st) == 0 else { throw SystemError("stat", path: dir) }
        let writable = st.st_mode & S_IWUSR != 0
        if !writable { chmod(dir, st.st_mode | S_IWUSR) }
        defer { if !writable { chmod(dir, st.st_mode & 0o7777) } }
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
        if fd < 0 { throw SystemError("create", path: path) }
        return fd
    }
}

/// A held content lock; released by `release()` or when dropped.
public final class ContentLock: @unchecked Sendable {
    private let table: ContentLockTable
    public let path: String
    public let mode: ContentLockTable.Mode
    private var released = false

    fileprivate init(table: ContentLockTable, path: String, mode: ContentLockTable.Mode) {
        self.table = table
        self.path = path
        self.mode = mode
    }

    /// Releases the lock; `removeFile` deletes the lock file first (as git-annex does after a drop).
    public func release(removeFile: Bool = false) {
        guard !released else { return }
        released = true
        table.release(path, mode, removeFile: removeFile)
    }

    deinit { release() }
}
