#if canImport(Glibc)
import Glibc
#endif
import CShims
import Shared

/// Reads and writes annexed content exactly where and how git-annex does:
/// objects under the repo's hash directories, partials in the annex tmp dir,
/// atomic moves into place, read-only files and key directories, content
/// locks shared with git-annex, and location-log updates through git-annex.
public final class ObjectStore: @unchecked Sendable {
    public let repo: AnnexRepo
    public let log: LocationLog
    let locks: ContentLockTable

    public init(repo: AnnexRepo, locks: ContentLockTable = .shared) {
        self.repo = repo
        self.log = LocationLog(repo: repo)
        self.locks = locks
    }

    public struct StoreError: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    // MARK: Presence

    /// The object file if present, in any layout git-annex may have used.
    public func contentPath(_ key: AnnexKey) -> String? {
        for dir in repo.keyDirectories(key) {
            let p = repo.objectPath(inDirectory: dir, key)
            var st = stat()
            if stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG { return p }
        }
        return nil
    }

    public func isPresent(_ key: AnnexKey) -> Bool { contentPath(key) != nil }

    /// Locks present content against removal (a shared lock, as git-annex's
    /// lockContentShared). nil if absent or being removed right now.
    public func lockPresent(_ key: AnnexKey) throws -> (lock: ContentLock, path: String)? {
        guard let path = contentPath(key) else { return nil }
        let dir = Posix.dirname(path)
        guard let lock = try locks.tryLock(repo.lockPath(inDirectory: dir, key), .shared) else { return nil }
        // A drop may have finished between the check and the lock.
        guard Posix.exists(path) else { lock.release(); return nil }
        return (lock, path)
    }

    // MARK: Receiving

    /// Refuses keys annexd cannot store safely, with the reason to show the peer.
    public func checkStorable(_ key: AnnexKey) -> StoreError? {
        if key.isChunk {
            return StoreError(description: "\(key) is a chunk key; chunks belong to special remotes, not repositories")
        }
        if repo.verify, key.backend.verification == .unsupported {
            return StoreError(description: "cannot verify content of backend \(key.backendName) (annexd has no implementation of it); set annex.verify=false in \(repo.path) to accept it unverified")
        }
        return nil
    }

    /// Bytes of a partial download kept from an earlier attempt: the resume offset.
    public func partialSize(_ key: AnnexKey) -> Int64 {
        Posix.fileSize(repo.partialPath(key)) ?? 0
    }

    /// Opens the partial file to receive content from `offset`, rehashing what
    /// is kept before it (constant memory).
    /// `mustVerify` forces the checksum even with annex.verify=false, as git-annex
    /// does for resumed transfers and protocol v0 (no VALID from the sender).
    public func beginReceive(_ key: AnnexKey, offset: Int64, mustVerify: Bool = false) throws -> IncomingContent {
        try Posix.makeDirectories(repo.tmpDir)
        log.prepare()
        let path = repo.partialPath(key)
        let fd = try Posix.check("open", path: path) { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) }
        let incoming = IncomingContent(key: key, path: path, fd: fd,
                                       hasher: hasher(for: key, force: mustVerify || offset > 0))
        do {
            try incoming.resume(at: offset)
        } catch {
            incoming.closeFile()
            throw error
        }
        return incoming
    }

    /// Checks the received content and moves it into place. On a mismatch the
    /// partial is deleted and `StoreError` says why; nothing else changes.
    public func commit(_ incoming: IncomingContent) throws {
        defer { incoming.closeFile() }
        let key = incoming.key
        if let expected = key.size, expected != incoming.size {
            discard(incoming)
            throw StoreError(description: "received \(incoming.size) bytes for \(key), which has size \(expected)")
        }
        if let h = incoming.hasher {
            let digest = h.finalizeHex()
            let expected = key.backend.expectedDigest(of: key)
            if digest != expected {
                discard(incoming)
                throw StoreError(description: "content received for \(key) does not match its checksum (got \(digest))")
            }
        }
        try Posix.fsync(fd: incoming.fd, path: incoming.path)
        try moveIntoPlace(incoming.path, key)
    }

    public func discard(_ incoming: IncomingContent) {
        incoming.closeFile()
        unlink(incoming.path)
    }

    /// Discards a kept partial (used when the client says INVALID before any DATA).
    public func discardPartial(_ key: AnnexKey) {
        unlink(repo.partialPath(key))
    }

    private func hasher(for key: AnnexKey, force: Bool) -> ContentHasher? {
        guard repo.verify || force, case .hash(let alg) = key.backend.verification else { return nil }
        // Small content is hashed inline; large content on a second core.
        if let size = key.size, size < 4 << 20 { return alg.makeHasher() }
        return PipelinedHasher(alg.makeHasher())
    }

    /// Atomic move of verified content into the object directory, with git-annex's
    /// permissions (file without write bits, key directory 0555), then the log.
    private func moveIntoPlace(_ source: String, _ key: AnnexKey) throws {
        let dir = repo.keyDirectory(key)
        let dest = repo.objectPath(inDirectory: dir, key)
        try Posix.makeDirectories(Posix.dirname(dir))
        if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw SystemError("mkdir", path: dir) }
        chmod(dir, 0o755)
        var st = stat()
        if stat(source, &st) == 0 {
            chmod(source, st.st_mode & 0o555)
        }
        let renamed = rename(source, dest)
        let err = errno
        chmod(dir, 0o555)
        guard renamed == 0 else { throw SystemError("rename into", path: dest, errno: err) }
        Posix.fsyncDirectory(dir)
        try log.setPresent(key, true)
    }

    // MARK: Removing

    /// Removes content the way `git annex drop` does: exclusive lock, unlink,
    /// tidy empty directories, log. False if absent or locked by someone.
    /// With `stillAllowed`, removal happens only while it returns true (REMOVE-BEFORE).
    public func remove(_ key: AnnexKey, stillAllowed: () -> Bool = { true }) throws -> Bool {
        guard let path = contentPath(key) else { return false }
        let dir = Posix.dirname(path)
        guard let lock = try locks.tryLock(repo.lockPath(inDirectory: dir, key), .exclusive) else { return false }
        // A LOCKCONTENT of a connection that dropped still protects the content (git-annex's .rtm).
        if Retention.isRetained(path) { lock.release(); return false }
        guard stillAllowed(), Posix.exists(path) else { lock.release(); return false }
        Retention.clear(path)
        chmod(dir, 0o755)
        guard unlink(path) == 0 else {
            let e = SystemError("remove", path: path)
            chmod(dir, 0o555)
            lock.release()
            throw e
        }
        lock.release(removeFile: true)
        rmdir(dir)
        // Tidy the two hash levels above when they became empty.
        let h2 = Posix.dirname(dir)
        if rmdir(h2) == 0 { rmdir(Posix.dirname(h2)) }
        try log.setPresent(key, false)
        return true
    }
}

/// Content arriving into a partial file, hashed as it is written.
public final class IncomingContent: @unchecked Sendable {
    public let key: AnnexKey
    public let path: String
    let fd: Int32
    let hasher: ContentHasher?
    public private(set) var size: Int64 = 0
    private var closed = false

    init(key: AnnexKey, path: String, fd: Int32, hasher: ContentHasher?) {
        self.key = key
        self.path = path
        self.fd = fd
        self.hasher = hasher
    }

    /// Truncates to `offset` and feeds the kept prefix to the hasher.
    func resume(at offset: Int64) throws {
        try Posix.check("truncate", path: path) { ftruncate(fd, off_t(offset)) }
        if let hasher, offset > 0 {
            let bufSize = 1 << 20
            let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: bufSize, alignment: 64)
            defer { buf.deallocate() }
            var pos: Int64 = 0
            while pos < offset {
                let n = pread(fd, buf.baseAddress, Int(min(Int64(bufSize), offset - pos)), off_t(pos))
                if n < 0 { if errno == EINTR { continue }; throw SystemError("read", path: path) }
                if n == 0 { break }
                hasher.update(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
                pos += Int64(n)
            }
        }
        try Posix.check("seek", path: path) { lseek(fd, off_t(offset), SEEK_SET) }
        size = offset
        flushedTo = offset
    }

    /// Reads `count` payload bytes from `conn` into the partial file, hashing as
    /// they come; stops early at end of stream (or, for fault-injection tests,
    /// after `limit` bytes). Returns the bytes received. With a pipelined hasher
    /// the bytes go from the socket into the hasher's buffers with no extra copy,
    /// a whole buffer at a time: one write and one hand-over per MiB, not per read.
    public func receive(from conn: FDConnection, count: Int64, limit: Int64? = nil) throws -> Int64 {
        var remaining = min(count, limit ?? count)
        guard let piped = hasher as? PipelinedHasher else {
            let got = try conn.readPayload(count: remaining) { try self.write($0) }
            return got
        }
        var got: Int64 = 0
        while remaining > 0 {
            let buf = piped.acquire()
            let want = Int(min(remaining, Int64(buf.count)))
            let filled: Int
            do {
                filled = try fill(buf, upTo: want, from: conn)
            } catch let partial as PartialFill {
                // What arrived before the failure is kept, so a resume does not ask for it again.
                try keep(buf, count: partial.filled, in: piped)
                throw partial.error
            }
            try keep(buf, count: filled, in: piped)
            got += Int64(filled)
            remaining -= Int64(filled)
            if filled < want { break }
        }
        return got
    }

    private struct PartialFill: Error { let filled: Int; let error: Error }

    /// Reads into `buf` until `want` bytes or end of stream; a read error carries what was filled.
    private func fill(_ buf: UnsafeMutableRawBufferPointer, upTo want: Int, from conn: FDConnection) throws -> Int {
        var filled = 0
        while filled < want {
            let n: Int
            do {
                n = try conn.readPayloadSome(into: UnsafeMutableRawBufferPointer(rebasing: buf[filled..<want]))
            } catch {
                throw PartialFill(filled: filled, error: error)
            }
            if n == 0 { break }
            filled += n
        }
        return filled
    }

    /// Appends the first `count` bytes of a pipeline buffer to the file and hands them to the hasher.
    private func keep(_ buf: UnsafeMutableRawBufferPointer, count: Int, in piped: PipelinedHasher) throws {
        guard count > 0 else { piped.submit(buf, count: 0); return }
        do {
            try appendToFile(UnsafeRawBufferPointer(rebasing: buf[0..<count]))
        } catch {
            piped.submit(buf, count: 0)
            throw error
        }
        piped.submit(buf, count: count)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        hasher?.update(bytes)
        try appendToFile(bytes)
    }

    private func appendToFile(_ bytes: UnsafeRawBufferPointer) throws {
        try Posix.writeAll(fd: fd, bytes, what: path)
        size += Int64(bytes.count)
        // Start writeback as content arrives, so the fsync before the final
        // rename has little left to do.
        if size - flushedTo >= Self.writebackStep {
            _ = annexd_start_writeback(fd, off_t(flushedTo), off_t(size - flushedTo))
            flushedTo = size
        }
    }

    private static let writebackStep: Int64 = 16 << 20
    private var flushedTo: Int64 = 0

    func closeFile() {
        guard !closed else { return }
        closed = true
        close(fd)
    }

    deinit { closeFile() }
}
