#if canImport(Glibc)
import Glibc
#endif
import CShims
import Synchronization

/// A long-running child with pipes to its stdin and stdout (stderr inherited
/// or /dev/null): git-annex batch commands, git services, P2P servers.
public final class ChildProcess: @unchecked Sendable {
    public let pid: Int32
    /// Write end of the child's stdin (valid until closeStdin).
    public let stdinFD: Int32
    /// Read end of the child's stdout (valid until closeStdout).
    public let stdoutFD: Int32
    /// Which ends are still open; closing is thread-safe and happens once.
    private let open = Mutex<(stdin: Bool, stdout: Bool)>((true, true))
    private var exitStatus: Int32?

    public init(_ args: [String], cwd: String? = nil, quietStderr: Bool = false) throws {
        // Writing to a child that died must be an error (EPIPE), not the end of this process.
        Posix.ignoreSIGPIPE()
        var inPipe: [Int32] = [0, 0], outPipe: [Int32] = [0, 0]
        guard annexd_pipe_cloexec(&inPipe) == 0 else { throw SystemError("pipe") }
        guard annexd_pipe_cloexec(&outPipe) == 0 else {
            close(inPipe[0]); close(inPipe[1])
            throw SystemError("pipe")
        }
        let errFD: Int32 = quietStderr ? Glibc.open("/dev/null", O_WRONLY | O_CLOEXEC) : -1
        var pid: Int32 = 0
        let copies = args.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        let argv: [UnsafePointer<CChar>?] = copies.map { UnsafePointer($0) } + [nil]
        let rc = argv.withUnsafeBufferPointer { annexd_spawn($0.baseAddress!, nil, cwd, inPipe[0], outPipe[1], errFD, &pid) }
        close(inPipe[0])
        close(outPipe[1])
        if errFD >= 0 { close(errFD) }
        guard rc == 0 else {
            close(inPipe[1]); close(outPipe[0])
            throw SystemError("run \(args.first ?? "")", errno: rc)
        }
        self.pid = pid
        stdinFD = inPipe[1]
        stdoutFD = outPipe[0]
    }

    public func closeStdin() {
        if open.withLock({ o in defer { o.stdin = false }; return o.stdin }) { close(stdinFD) }
    }

    public func closeStdout() {
        if open.withLock({ o in defer { o.stdout = false }; return o.stdout }) { close(stdoutFD) }
    }

    /// Waits for the child to exit; its exit code (128+N for a signal).
    @discardableResult
    public func wait() -> Int32 {
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        exitStatus = code
        return code
    }

    deinit {
        closeStdin()
        closeStdout()
        if exitStatus == nil { wait() }
    }
}
