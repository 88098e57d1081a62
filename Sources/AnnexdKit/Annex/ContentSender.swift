#if canImport(Glibc)
import Glibc
#endif
import Shared

extension ObjectStore {
    public enum SendOutcome: Equatable {
        /// Not present (or being dropped): nothing was sent.
        case absent
        /// `DATA n` and all n bytes went out; `unchanged` is false if the file changed meanwhile (send INVALID).
        case sent(unchanged: Bool)
        /// Fewer bytes than announced could be read: the connection must close.
        case short
    }

    /// Sends `DATA n` and the content of `key` from `offset`, under a shared
    /// content lock so git-annex cannot drop it mid-way.
    public func send(_ key: AnnexKey, from offset: Int64, over conn: FDConnection) throws -> SendOutcome {
        guard let (lock, path) = try lockPresent(key) else { return .absent }
        defer { lock.release() }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .absent }
        defer { close(fd) }
        var before = stat()
        fstat(fd, &before)
        let size = Int64(before.st_size)
        let start = min(max(offset, 0), size)
        let sent = try conn.sendFileData(fd: fd, offset: start, length: size - start)
        guard sent == size - start else { return .short }
        var after = stat()
        fstat(fd, &after)
        let unchanged = after.st_size == before.st_size && after.st_mtim.tv_sec == before.st_mtim.tv_sec
            && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec
        return .sent(unchanged: unchanged)
    }
}
