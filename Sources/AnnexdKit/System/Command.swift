#if canImport(Glibc)
import Glibc
#endif
import CShims
import Foundation
import Synchronization

/// Runs short-lived helper programs (git, git-annex) and captures their output.
/// posix_spawn and waitpid directly: Foundation's Process polls for exit in
/// 50 ms steps, which would cost every session start that much per command.
public enum Command {
    public struct Failure: Error, CustomStringConvertible {
        public let command: [String]
        public let status: Int32
        public let stderr: String
        public var description: String {
            let err = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            return "\(command.joined(separator: " ")) exited with status \(status)" + (err.isEmpty ? "" : ": \(err)")
        }
    }

    /// A command given a time limit ran past it; it and everything it started were killed.
    public struct TimedOut: Error, CustomStringConvertible {
        public let command: [String]
        public let seconds: Double
        public var description: String {
            "\(command.joined(separator: " ")) did not finish within \(Self.format(seconds)) s and was stopped (it and what it started were killed)"
        }
        static func format(_ s: Double) -> String { s == s.rounded() ? String(Int(s)) : String(s) }
    }

    /// The time limit of git-annex plumbing queries the daemon waits on (find, whereis): a
    /// git-annex that hangs fails the request with `TimedOut` instead of holding it forever.
    /// Set once at startup (annexd --plumbing-timeout).
    public static var plumbingTimeout: Double {
        get { plumbingLimit.withLock { $0 } }
        set { plumbingLimit.withLock { $0 = newValue } }
    }
    private static let plumbingLimit = Mutex<Double>(600)

    public struct Output {
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    /// Runs `args[0]` (looked up in PATH) with the rest as arguments. With a `timeout`, the
    /// command runs in a process group of its own, killed whole when the time is up
    /// (`TimedOut` is thrown).
    public static func run(_ args: [String], cwd: String? = nil, environment: [String: String]? = nil,
                           stdin: Data? = nil, timeout: Double? = nil) throws -> Output {
        var inPipe: [Int32] = [-1, -1], outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
        guard annexd_pipe_cloexec(&outPipe) == 0, annexd_pipe_cloexec(&errPipe) == 0 else { throw SystemError("pipe") }
        if stdin != nil, annexd_pipe_cloexec(&inPipe) != 0 { throw SystemError("pipe") }
        var pid: Int32 = 0
        let rc = withCStrings(args) { argv in
            withOptionalCStrings(environment.map { $0.map { "\($0.key)=\($0.value)" } }) { envp in
                timeout == nil ? annexd_spawn(argv, envp, cwd, inPipe[0], outPipe[1], errPipe[1], &pid)
                    : annexd_spawn_group(argv, envp, cwd, inPipe[0], outPipe[1], errPipe[1], &pid)
            }
        }
        for fd in [inPipe[0], outPipe[1], errPipe[1]] where fd >= 0 { close(fd) }
        guard rc == 0 else {
            for fd in [inPipe[1], outPipe[0], errPipe[0]] where fd >= 0 { close(fd) }
            throw SystemError("run \(args.first ?? "")", errno: rc)
        }
        // Feed stdin and drain stderr on threads so no pipe can fill and block the child.
        let feeder = stdin.map { data -> Thread in
            let fd = inPipe[1]
            let t = Thread {
                data.withUnsafeBytes { try? Posix.writeAll(fd: fd, $0, what: "child stdin") }
                close(fd)
            }
            t.start()
            return t
        }
        let watchdog = timeout.map { Watchdog(group: pid, seconds: $0) }
        let errBox = Box()
        let errDone = DispatchSemaphore(value: 0)
        let errFD = errPipe[0]
        Thread { errBox.data = readAll(errFD); errDone.signal() }.start()
        let out = readAll(outPipe[0])
        errDone.wait()
        close(outPipe[0])
        close(errPipe[0])
        _ = feeder
        var status: Int32 = 0
        var timedOut = false
        if let watchdog {
            // Waits for the exit without reaping, so the pid (the group's id) cannot be reused
            // before the watchdog is told.
            var info = siginfo_t()
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
            timedOut = watchdog.finish()
        }
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if let timeout, timedOut { throw TimedOut(command: args, seconds: timeout) }
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Output(status: code, stdout: String(decoding: out, as: UTF8.self),
                      stderr: String(decoding: errBox.data, as: UTF8.self))
    }

    /// Runs and returns stdout, throwing `Failure` on a non-zero exit.
    @discardableResult
    public static func output(_ args: [String], cwd: String? = nil) throws -> String {
        let r = try run(args, cwd: cwd)
        guard r.status == 0 else { throw Failure(command: args, status: r.status, stderr: r.stderr) }
        return r.stdout
    }

    private final class Box: @unchecked Sendable { var data: [UInt8] = [] }

    /// Kills process group `group` if it is still running after `seconds`.
    private final class Watchdog: Sendable {
        enum State { case running, finished, killed }
        private let state = Mutex(State.running)
        private let done = DispatchSemaphore(value: 0)

        init(group: Int32, seconds: Double) {
            Thread { [self] in
                guard done.wait(timeout: .now() + seconds) == .timedOut else { return }
                state.withLock {
                    guard $0 == .running else { return }
                    kill(-group, SIGKILL)
                    $0 = .killed
                }
            }.start()
        }

        /// The command exited (not yet reaped): true when the watchdog killed it.
        func finish() -> Bool {
            let killed = state.withLock { s -> Bool in
                if s == .running { s = .finished }
                return s == .killed
            }
            done.signal()
            return killed
        }
    }

    private static func readAll(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return out }
            out.append(contentsOf: buf[0..<n])
        }
    }

    private static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
        let copies = strings.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        let ptrs: [UnsafePointer<CChar>?] = copies.map { UnsafePointer($0) } + [nil]
        return ptrs.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    private static func withOptionalCStrings<R>(_ strings: [String]?, _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
        guard let strings else { return body(nil) }
        return withCStrings(strings) { body($0) }
    }
}
