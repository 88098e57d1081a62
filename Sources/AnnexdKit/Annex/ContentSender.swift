#if canImport(Glibc)
import Glibc
#endif
import Shared

/// Present content opened for sending, under a shared content lock so git-annex
/// cannot drop it mid-way. `stream` writes payload bytes only; the caller sends `DATA n`.
public final class OutgoingContent {
    public let key: AnnexKey
    /// The file's size when it was opened.
    public let size: Int64
    private let lock: ContentLock
    private let fd: Int32
    private let before: stat
    private var closed = false

    fileprivate init(key: AnnexKey, lock: ContentLock, fd: Int32, before: stat) {
        self.key = key
        self.lock = lock
        self.fd = fd
        self.before = before
        self.size = Int64(before.st_size)
    }

    deinit { close() }

    /// Writes `length` bytes from `offset` to the connection, with sendfile(2) where the kernel
    /// allows. `complete` is false if the file shrank (fewer bytes went out: the caller must
    /// close); `unchanged` is false if the file changed meanwhile (send INVALID).
    public func stream(from offset: Int64, length: Int64, over conn: FDConnection) throws
        -> (complete: Bool, unchanged: Bool) {
        let sent = try conn.sendFileBytes(fd: fd, offset: offset, length: length)
        var after = stat()
        fstat(fd, &after)
        let unchanged = after.st_size == before.st_size && after.st_mtim.tv_sec == before.st_mtim.tv_sec
            && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec
        return (sent == length, unchanged)
    }

    /// Closes the file and releases the lock (also on deinit).
    public func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
        lock.release()
    }
}

extension ObjectStore {
    public enum SendOutcome: Equatable {
        /// Not present (or being dropped): nothing was sent.
        case absent
        /// `DATA n` and all n bytes went out; `unchanged` is false if the file changed meanwhile (send INVALID).
        case sent(unchanged: Bool)
        /// Fewer bytes than announced could be read: the connection must close.
        case short
    }

    /// Opens present content for sending; nil if absent or being removed.
    public func openForSending(_ key: AnnexKey) throws -> OutgoingContent? {
        guard let (lock, path) = try lockPresent(key) else { return nil }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { lock.release(); return nil }
        var before = stat()
        fstat(fd, &before)
        return OutgoingContent(key: key, lock: lock, fd: fd, before: before)
    }

    /// Sends `DATA n` and the content of `key` from `offset` (the client's side of a PUT).
    public func send(_ key: AnnexKey, from offset: Int64, over conn: FDConnection) throws -> SendOutcome {
        guard let content = try openForSending(key) else { return .absent }
        defer { content.close() }
        let start = min(max(offset, 0), content.size)
        conn.send(.data(length: content.size - start))
        let (complete, unchanged) = try content.stream(from: start, length: content.size - start, over: conn)
        return complete ? .sent(unchanged: unchanged) : .short
    }
}
