#if canImport(Glibc)
import Glibc
#endif
import CShims
import Foundation
@testable import AnnexdKit
import Shared

/// A real `annexd` daemon as a child process: its own state dir and a short RPC socket path
/// (unix socket paths are limited to 107 bytes) under /tmp/annexd-t-XXXXXX, started with
/// no blocked signals (posix_spawn with POSIX_SPAWN_SETSIGMASK, through `annexd_spawn`) so
/// SIGTERM really reaches it, and killed when the value goes away.
/// Every wait and read is bounded, so a daemon that misbehaves fails a test instead of hanging it.
final class DaemonProcess: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// How long a started process, call or annex-cli run may take before a test gives up on it
    /// (scaled under a sanitizer, like the latency bounds: TestEnvironment.seconds).
    static let defaultTimeout: TimeInterval = TestEnvironment.seconds(10)

    /// The scratch directory /tmp/annexd-t-XXXXXX (removed on deinit).
    let dir: String
    let stateDir: String
    let socketPath: String
    /// Where the daemon's stdout and stderr go.
    let logPath: String
    private(set) var pid: Int32
    private var exitStatus: Int32?
    /// Directories removed with this one (a restarted daemon's state lives in its predecessor's).
    var alsoRemove: [String] = []
    /// Keep `dir` on deinit (a successor uses the state in it).
    var keepsDirectory = false

    /// annex-cli, next to the annexd under test.
    static var annexCLIPath: String { Posix.dirname(TestEnvironment.annexd) + "/annex-cli" }

    /// A fresh scratch dir for a daemon: /tmp/annexd-t-XXXXXX (0700).
    static func makeScratchDirectory() -> String {
        var template = Array("/tmp/annexd-t-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    /// Starts `annexd daemon --state-dir DIR/state --socket DIR/rpc.sock` and waits until the
    /// socket answers `daemon.status`. `stateDir`/`socketPath` override the defaults.
    /// `wrapper`: argv the daemon runs under (e.g. `ip netns exec NS`).
    init(stateDir: String? = nil, socketPath: String? = nil, wrapper: [String] = [], tor: [String] = ["--tor", "none"],
         extraArguments: [String] = [],
         env: [String: String] = [:], waitReady: Bool = true, timeout: TimeInterval = DaemonProcess.defaultTimeout) throws {
        dir = Self.makeScratchDirectory()
        self.stateDir = stateDir ?? dir + "/state"
        self.socketPath = socketPath ?? dir + "/rpc.sock"
        logPath = dir + "/annexd.log"
        precondition(self.socketPath.utf8.count < 108, "socket path too long for sockaddr_un: \(self.socketPath)")
        Posix.ignoreSIGPIPE()
        pid = try Self.spawn(wrapper + [TestEnvironment.annexd, "daemon", "--state-dir", self.stateDir, "--socket", self.socketPath,
                              "--log-level", "notice"] + tor + extraArguments,
                             env: env, stdinPath: nil, outputPath: logPath)
        if waitReady {
            do { try self.waitReady(timeout: timeout) } catch {
                kill(pid, SIGKILL)
                _ = waitForExit(timeout: 5)
                throw error
            }
        }
    }

    deinit {
        if exitStatus == nil {
            kill(pid, SIGKILL)
            _ = waitForExit(timeout: 5)
        }
        for d in (keepsDirectory ? [] : [dir]) + alsoRemove {
            _ = try? Command.run(["chmod", "-R", "u+w", d])
            try? FileManager.default.removeItem(atPath: d)
        }
    }

    /// What the daemon wrote to stdout and stderr so far.
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    // MARK: Process control

    /// posix_spawn of `args` with the test's environment plus `env`, stdin from `stdinPath`
    /// (nil: /dev/null), stdout and stderr appended to `outputPath` (or to two files).
    static func spawn(_ args: [String], env: [String: String] = [:], cwd: String? = nil, stdinPath: String?,
                      outputPath: String, errorPath: String? = nil) throws -> Int32 {
        let inFD: Int32 = stdinPath.map { open($0, O_RDONLY | O_CLOEXEC) } ?? -1
        let outFD = open(outputPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        let errFD = errorPath.map { open($0, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644) } ?? outFD
        defer {
            if inFD >= 0 { close(inFD) }
            close(outFD)
            if errFD != outFD { close(errFD) }
        }
        guard outFD >= 0, errFD >= 0, stdinPath == nil || inFD >= 0 else {
            throw Failure(description: "cannot open the child's stdio files: errno \(errno)")
        }
        return try spawn(args, env: env, cwd: cwd, stdin: inFD, stdout: outFD, stderr: errFD)
    }

    /// posix_spawn of `args` with the test's environment plus `env`, in `cwd` (nil: this
    /// process's), with these descriptors as its stdin (-1: /dev/null), stdout and stderr.
    static func spawn(_ args: [String], env: [String: String] = [:], cwd: String? = nil,
                      stdin inFD: Int32, stdout outFD: Int32, stderr errFD: Int32) throws -> Int32 {
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env { environment[k] = v }
        let argStrings = args.map { strdup($0) }
        let envStrings = environment.map { strdup("\($0.key)=\($0.value)") }
        defer { (argStrings + envStrings).forEach { free($0) } }
        let argv: [UnsafePointer<CChar>?] = argStrings.map { UnsafePointer($0) } + [nil]
        let envp: [UnsafePointer<CChar>?] = envStrings.map { UnsafePointer($0) } + [nil]
        var pid: Int32 = 0
        let rc = argv.withUnsafeBufferPointer { a in
            envp.withUnsafeBufferPointer { e in annexd_spawn(a.baseAddress!, e.baseAddress!, cwd, inFD, outFD, errFD, &pid) }
        }
        guard rc == 0 else { throw Failure(description: "cannot start \(args[0]): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// Waits up to `timeout` for `pid` to exit: its exit code (128+N for signal N), nil on timeout.
    static func waitForExit(pid: Int32, timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f) }
            if r < 0 && errno != EINTR { return nil }
            if Date() >= deadline { return nil }
            usleep(5_000)
        }
    }

    /// Runs a short-lived program to completion (killed after `timeout`): its exit status and output.
    static func run(_ args: [String], env: [String: String] = [:], cwd: String? = nil, stdin: String? = nil,
                    timeout: TimeInterval = DaemonProcess.defaultTimeout) throws -> (status: Int32, stdout: String, stderr: String) {
        let tmp = makeScratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        var inPath: String?
        if let stdin {
            inPath = tmp + "/stdin"
            try Data(stdin.utf8).write(to: URL(fileURLWithPath: inPath!))
            chmod(inPath!, 0o644)
        }
        let pid = try spawn(args, env: env, cwd: cwd, stdinPath: inPath, outputPath: tmp + "/stdout", errorPath: tmp + "/stderr")
        guard let status = waitForExit(pid: pid, timeout: timeout) else {
            kill(pid, SIGKILL)
            _ = waitForExit(pid: pid, timeout: 5)
            throw Failure(description: "\(args.joined(separator: " ")) did not finish within \(timeout) s")
        }
        let out = (try? String(contentsOfFile: tmp + "/stdout", encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: tmp + "/stderr", encoding: .utf8)) ?? ""
        return (status, out, err)
    }

    /// Polls until a fresh connection answers `daemon.status`.
    func waitReady(timeout: TimeInterval = DaemonProcess.defaultTimeout) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var lastError = "no attempt"
        while Date() < deadline {
            if let code = Self.waitForExit(pid: pid, timeout: 0) {
                exitStatus = code
                throw Failure(description: "annexd exited with status \(code) before answering:\n\(log)")
            }
            do {
                let status = try call("daemon.status", timeout: max(0.1, deadline.timeIntervalSinceNow))
                if status["pid"]?.intValue == Int64(pid) { return }
                lastError = "daemon.status answered \(status), not from pid \(pid)"
            } catch {
                lastError = "\(error)"
            }
            usleep(20_000)
        }
        throw Failure(description: "annexd (pid \(pid)) did not answer daemon.status on \(socketPath) within \(timeout) s: \(lastError)\n\(log)")
    }

    /// Waits for the daemon to exit by itself.
    func waitForExit(timeout: TimeInterval = DaemonProcess.defaultTimeout) -> Int32? {
        if let exitStatus { return exitStatus }
        let code = Self.waitForExit(pid: pid, timeout: timeout)
        if code != nil { exitStatus = code }
        return code
    }

    /// SIGTERM, then waits: the exit status (nil when it did not exit within `timeout`).
    @discardableResult
    func terminate(timeout: TimeInterval = DaemonProcess.defaultTimeout) -> Int32? {
        if let exitStatus { return exitStatus }
        kill(pid, SIGTERM)
        return waitForExit(timeout: timeout)
    }

    var isRunning: Bool { exitStatus == nil && Self.waitForExit(pid: pid, timeout: 0) == nil }

    /// Resident memory of the daemon in bytes (VmRSS from /proc/PID/status).
    func residentBytes() throws -> Int {
        let text = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else {
            throw Failure(description: "no VmRSS in /proc/\(pid)/status")
        }
        return kib * 1024
    }

    // MARK: RPC

    /// A new connection to the RPC socket.
    func connect() throws -> RPCTestConnection { try RPCTestConnection(path: socketPath) }

    /// One request on a fresh connection: the whole response object.
    func response(_ method: String, _ params: JSONValue? = nil, timeout: TimeInterval = DaemonProcess.defaultTimeout) throws -> JSONValue {
        let c = try connect()
        return try c.request(method, params, timeout: timeout)
    }

    /// One request on a fresh connection: its result, or the error response thrown as `RPCError`.
    func call(_ method: String, _ params: JSONValue? = nil, timeout: TimeInterval = DaemonProcess.defaultTimeout) throws -> JSONValue {
        let r = try response(method, params, timeout: timeout)
        if let result = r["result"] { return result }
        if let e = r["error"] {
            throw RPCError(code: Int(e["code"]?.intValue ?? 0), message: e["message"]?.stringValue ?? "",
                           reason: e["data"]?["reason"]?.stringValue ?? "", details: e["data"]?.objectValue ?? [:])
        }
        throw Failure(description: "not a JSON-RPC response: \(r)")
    }

    // MARK: annex-cli

    /// The real annex-cli with ANNEXD_SOCKET set to this daemon's socket.
    func annexCLI(_ args: String..., env: [String: String] = [:], timeout: TimeInterval = DaemonProcess.defaultTimeout) throws
        -> (status: Int32, stdout: String, stderr: String) {
        try annexCLI(args, env: env, timeout: timeout)
    }

    /// The real annex-cli with ANNEXD_SOCKET set to this daemon's socket, run in `cwd` (nil: here).
    func annexCLI(_ args: [String], env: [String: String] = [:], cwd: String? = nil,
                  timeout: TimeInterval = DaemonProcess.defaultTimeout) throws
        -> (status: Int32, stdout: String, stderr: String) {
        var e = env
        if e["ANNEXD_SOCKET"] == nil { e["ANNEXD_SOCKET"] = socketPath }
        return try Self.run([Self.annexCLIPath] + args, env: e, cwd: cwd, timeout: timeout)
    }
}

/// One client connection to an RPC socket, with raw line access and bounded reads.
final class RPCTestConnection {
    /// The socket; -1 once closed. (A throwing init still runs deinit, so a failed connect
    /// must not close it twice: the number may already belong to another test's socket.)
    private(set) var fd: Int32 = -1
    private var buffer: [UInt8] = []
    private var nextID: Int64 = 1
    private(set) var atEOF = false
    /// The end of input was a reset (annexd closed with bytes of ours unread).
    private(set) var resetSeen = false

    struct ConnectError: Error, CustomStringConvertible {
        let errno: Int32
        let path: String
        var description: String { "connect to \(path): \(String(cString: strerror(errno)))" }
    }

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw DaemonProcess.Failure(description: "socket(): \(String(cString: strerror(errno)))") }
        // Bounds a connect to a full backlog (unix sockets use the send timeout for it) and every send.
        var tv = timeval(tv_sec: Int(DaemonProcess.defaultTimeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        precondition(bytes.count < MemoryLayout.size(ofValue: addr.sun_path))
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes + [0]) }
        var rc: Int32 = -1
        repeat {
            rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        } while rc != 0 && errno == EINTR
        if rc != 0 {
            let err = errno
            close(fd)
            fd = -1
            throw ConnectError(errno: err, path: path)
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Writes `line` and a newline.
    func send(_ line: String) throws { try sendRaw(Array(line.utf8) + [10]) }

    /// Writes bytes as they are; throws when the daemon closed the connection (EPIPE, ECONNRESET).
    func sendRaw(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try sendRaw($0) }
    }

    func sendRaw(_ bytes: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < bytes.count {
            let n = Glibc.send(fd, bytes.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL))
            if n < 0 {
                if errno == EINTR { continue }
                throw DaemonProcess.Failure(description: "send to annexd failed: \(String(cString: strerror(errno)))")
            }
            off += n
        }
    }

    /// Ends the client's sending side (annexd sees end of input, and still answers).
    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads whatever arrives within `timeout` into the buffer; false at end of input.
    private func fill(deadline: Date) throws -> Bool {
        while true {
            let wait = deadline.timeIntervalSinceNow
            if wait <= 0 { throw DaemonProcess.Failure(description: "no answer from annexd in time") }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(min(wait * 1000, 60_000)) + 1)
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                // A daemon that closes with our unread bytes in its buffer resets the connection
                // (after everything it sent has been read): that is an end of input too.
                if errno == ECONNRESET { atEOF = true; resetSeen = true; return false }
                throw DaemonProcess.Failure(description: "recv from annexd failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { atEOF = true; return false }
            buffer.append(contentsOf: chunk[0..<n])
            return true
        }
    }

    /// The next line without its newline; nil at end of input. Throws after `timeout`.
    func readLine(timeout: TimeInterval = DaemonProcess.defaultTimeout) throws -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let i = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<i], as: UTF8.self)
                buffer.removeSubrange(...i)
                return line
            }
            if atEOF { return nil }
            if try !fill(deadline: deadline), buffer.isEmpty { return nil }
        }
    }

    /// The next line parsed as JSON; nil at end of input.
    func readJSON(timeout: TimeInterval = DaemonProcess.defaultTimeout) throws -> JSONValue? {
        guard let line = try readLine(timeout: timeout) else { return nil }
        return try JSONValue(parsing: line, maxBytes: 64 << 20)
    }

    /// True when the daemon closes the connection (no more lines) within `timeout`.
    func closesWithoutMore(timeout: TimeInterval = DaemonProcess.defaultTimeout) throws -> Bool {
        try readLine(timeout: timeout) == nil
    }

    /// Sends a request with a fresh id and returns the response with that id (notifications skipped).
    func request(_ method: String, _ params: JSONValue? = nil, timeout: TimeInterval = DaemonProcess.defaultTimeout) throws -> JSONValue {
        let id = nextID
        nextID += 1
        var o: JSONObject = ["jsonrpc": "2.0", "id": .int(id), "method": .string(method)]
        if let params { o["params"] = params }
        try send(JSONValue.object(o).serialized())
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            guard let reply = try readJSON(timeout: max(0.001, deadline.timeIntervalSinceNow)) else {
                throw DaemonProcess.Failure(description: "annexd closed the connection before answering \(method)")
            }
            if reply["id"] == .int(id) || (reply["id"] == .null && reply["error"] != nil) { return reply }
        }
    }
}
