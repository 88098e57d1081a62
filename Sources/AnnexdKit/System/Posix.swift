#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CShims

/// A failed system call: what was attempted, on what, and errno's text.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let path: String?
    public let errno: Int32

    public init(_ operation: String, path: String? = nil, errno: Int32 = Glibc.errno) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    public var description: String {
        let what = path.map { "\(operation) \($0)" } ?? operation
        return "\(what): \(String(cString: strerror(errno)))"
    }
}

public enum Posix {
    /// Retries a call interrupted by a signal; throws on -1.
    @discardableResult
    public static func check<T: BinaryInteger>(_ op: String, path: String? = nil, _ call: () -> T) throws -> T {
        while true {
            let r = call()
            if r != -1 { return r }
            if errno == EINTR { continue }
            throw SystemError(op, path: path)
        }
    }

    public static func fileSize(_ path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int64(st.st_size)
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir -p; created directories get `mode` (subject to umask).
    public static func makeDirectories(_ path: String, mode: mode_t = 0o777) throws {
        if isDirectory(path) { return }
        let parent = dirname(path)
        if parent != path { try makeDirectories(parent, mode: mode) }
        if mkdir(path, mode) != 0 && errno != EEXIST { throw SystemError("mkdir", path: path) }
    }

    public static func dirname(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    public static func basename(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    public static func fsync(fd: Int32, path: String) throws {
        try check("fsync", path: path) { Glibc.fsync(fd) }
    }

    /// fsync a directory so a rename in it is durable.
    public static func fsyncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { _ = Glibc.fsync(fd); close(fd) }
    }

    /// Writes all bytes, retrying on short writes and EINTR.
    public static func writeAll(fd: Int32, _ buf: UnsafeRawBufferPointer, what: String) throws {
        var off = 0
        while off < buf.count {
            let n = write(fd, buf.baseAddress! + off, buf.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("write", path: what)
            }
            off += n
        }
    }

    public static func realpath(_ path: String) -> String? {
        guard let r = Glibc.realpath(path, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }

    /// Ignore SIGPIPE so a closed peer shows up as EPIPE on write, not process death.
    public static func ignoreSIGPIPE() { signal(SIGPIPE, SIG_IGN) }
}

extension Posix {
    /// Keeps a long-running daemon's resident size close to what it holds:
    /// - at most `arenas` malloc arenas for all threads (glibc's M_ARENA_MAX). glibc would give
    ///   each thread of a transfer its own arena (up to 8 per core), and memory freed in one is
    ///   not reused by the others;
    /// - blocks of `mmapThreshold` bytes or more mapped on their own, so freeing one gives it
    ///   back at once. glibc's threshold is dynamic: after the first 1 MiB connection buffer is
    ///   freed it would put every later one in an arena, where a freed buffer stays resident
    ///   behind whatever small block was allocated after it.
    public static func tuneMalloc(arenas: Int32, mmapThreshold: Int32) {
        _ = annexd_tune_malloc(arenas, mmapThreshold)
    }

    /// Raises the soft limit on open files to the hard limit, as a server that holds a
    /// descriptor per connection should (systemd's default soft limit is 1024, its hard limit
    /// far higher; annexd's own connection limits stay the bound). Returns the soft limit now.
    @discardableResult
    public static func raiseFileLimit() -> UInt64 {
        var limit = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(RLIMIT_NOFILE_VALUE, &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(limit.rlim_cur)
    }

    #if canImport(Glibc)
    private static let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #endif
}
