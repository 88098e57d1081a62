#if canImport(Glibc)
import Glibc
#endif
import CShims
import Synchronization

/// A long-running child whose output goes to a file (or nowhere): annexd's own
/// tor. Its exit is observed by a dedicated thread, so `exitStatus()` can be
/// awaited without polling.
public final class BackgroundProcess: Sendable {
    public let pid: Int32
    private struct State {
        var status: Int32?
        var waiters: [CheckedContinuation<Int32, Never>] = []
    }
    private let state = Mutex(State())

    /// Starts `args` (PATH lookup) with stdin from /dev/null and stdout and
    /// stderr appended to `logPath` (nil: /dev/null).
    public init(_ args: [String], logPath: String?) throws {
        let out = logPath.map { open($0, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600) } ?? open("/dev/null", O_WRONLY | O_CLOEXEC)
        guard out >= 0 else { throw SystemError("open", path: logPath ?? "/dev/null") }
        defer { close(out) }
        var pid: Int32 = 0
        let copies = args.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        let argv: [UnsafePointer<CChar>?] = copies.map { UnsafePointer($0) } + [nil]
        let rc = argv.withUnsafeBufferPointer { annexd_spawn($0.baseAddress!, nil, nil, -1, out, out, &pid) }
        guard rc == 0 else { throw SystemError("run \(args.first ?? "")", errno: rc) }
        self.pid = pid
        let child = pid
        let watcher = Thread { [self] in
            var raw: Int32 = 0
            while waitpid(child, &raw, 0) < 0 && errno == EINTR {}
            let code: Int32 = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            let waiters = state.withLock { s in
                s.status = code
                defer { s.waiters = [] }
                return s.waiters
            }
            waiters.forEach { $0.resume(returning: code) }
        }
        watcher.start()
    }

    /// The exit code once the child has exited (128+N for signal N), else nil.
    public var exited: Int32? { state.withLock { $0.status } }

    /// Waits for the child to exit; its exit code (128+N for signal N).
    public func exitStatus() async -> Int32 {
        await withCheckedContinuation { cont in
            let done: Int32? = state.withLock { s in
                if let st = s.status { return st }
                s.waiters.append(cont)
                return nil
            }
            if let done { cont.resume(returning: done) }
        }
    }

    /// SIGTERM, then SIGKILL after `grace` seconds; blocks until the child is gone (tests, scripts).
    public func stop(grace: Double = 5) {
        guard exited == nil else { return }
        kill(pid, SIGTERM)
        var waited = 0.0
        while exited == nil {
            if waited >= grace { kill(pid, SIGKILL); waited = -Double.infinity }
            usleep(20_000)
            waited += 0.02
        }
    }

    /// SIGTERM, then SIGKILL if the child is still there after `grace` seconds.
    public func terminate(grace: Double = 5) async {
        guard exited == nil else { return }
        kill(pid, SIGTERM)
        let killer = Task { [self] in
            try await Task.sleep(for: .seconds(grace))
            if exited == nil { kill(pid, SIGKILL) }
        }
        _ = await exitStatus()
        killer.cancel()
    }
}

// Foundation's Thread without importing all of Foundation's process machinery.
import class Foundation.Thread
