#if canImport(Glibc)
import Glibc
#endif
import TorrcKit

/// Runs programs with posix_spawn and an explicit argv: no shell, no PATH from the caller,
/// a fixed small environment, stdin from /dev/null, stdout and stderr captured together,
/// no signals blocked or ignored in the child.
enum Spawn {
    static let searchPath = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    static let environment = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"]
    static let maxOutput = 64 * 1024

    struct Result {
        /// Exit status, or 128 + signal number.
        var status: Int32
        var output: String
    }

    /// An absolute program path: `name` itself if it has a slash, else the first
    /// executable `name` in the fixed search path.
    static func resolve(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        return searchPath.map { $0 + "/" + name }.first { access($0, X_OK) == 0 }
    }

    static func run(_ argv: [String]) throws(HelperFailure) -> Result {
        guard let program = argv.first.flatMap(resolve) else {
            throw HelperFailure(.ioError, "program not found or not executable: \(argv.first ?? "")")
        }
        var fds: [Int32] = [-1, -1]
        // Single-threaded: no other spawn can inherit the pipe before FD_CLOEXEC is set.
        guard pipe(&fds) == 0, fcntl(fds[0], F_SETFD, FD_CLOEXEC) == 0, fcntl(fds[1], F_SETFD, FD_CLOEXEC) == 0 else { throw HelperFailure(.ioError, "pipe: \(errnoText())") }
        let pid = try spawn(program, argv, stdoutFD: fds[1])
        close(fds[1])
        let output = readAll(fds[0])
        close(fds[0])
        return Result(status: wait(pid), output: output)
    }

    private static func spawn(_ program: String, _ argv: [String], stdoutFD: Int32) throws(HelperFailure) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutFD, 1)
        posix_spawn_file_actions_adddup2(&actions, stdoutFD, 2)

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let cArgv = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup($0) } + [nil]
        defer { (cArgv + cEnv).forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, program, &actions, &attr, cArgv, cEnv)
        guard rc == 0 else { throw HelperFailure(.ioError, "cannot run \(program): \(String(cString: strerror(rc)))") }
        return pid
    }

    private static func readAll(_ fd: Int32) -> String {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            if data.count < maxOutput { data += buffer[0..<min(n, maxOutput - data.count)] }
        }
        return String(decoding: data, as: UTF8.self)
    }

    private static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return 255 }
        }
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }
