#if canImport(Glibc)
import Glibc
#endif
import TorrcKit

/// The tor program: verifying a candidate torrc, reloading the running tor, waiting for it.
struct Tor {
    static let candidates = ["/usr/bin/tor", "/usr/sbin/tor", "/usr/local/bin/tor", "/usr/local/sbin/tor"]
    static let debianServiceDefaults = "/usr/share/tor/tor-service-defaults-torrc"

    let program: String
    let defaultsTorrc: String?
    let reload: ReloadMethod

    init(options: HelperOptions) throws(HelperFailure) {
        guard let found = Self.candidates.first(where: { access($0, X_OK) == 0 }) else {
            throw HelperFailure(.verifyFailed, "tor not found (looked in \(Self.candidates.joined(separator: ", ")))")
        }
        program = found
        defaultsTorrc = options.defaultsTorrc
            ?? (access(Self.debianServiceDefaults, R_OK) == 0 ? Self.debianServiceDefaults : nil)
        reload = options.reloadCommand.map(ReloadMethod.command) ?? ReloadMethod.systemDefault()
    }

    /// `tor --verify-config [--defaults-torrc D] -f FILE`, as Debian's unit does before start.
    func verify(_ file: String) throws(HelperFailure) {
        var argv = [program, "--verify-config"]
        if let defaultsTorrc { argv += ["--defaults-torrc", defaultsTorrc] }
        argv += ["-f", file]
        let result = try Spawn.run(argv)
        guard result.status == 0 else {
            throw HelperFailure(.verifyFailed, "tor --verify-config rejected the new torrc: \(Self.complaints(result.output))")
        }
    }

    func reloadNow() throws(HelperFailure) {
        try reload.perform()
    }

    /// tor's [warn] and [err] lines, or its last lines.
    static func complaints(_ output: String) -> String {
        let lines = output.split(separator: "\n")
        let bad = lines.filter { $0.contains("[warn]") || $0.contains("[err]") }
        return (bad.isEmpty ? Array(lines.suffix(3)) : bad).joined(separator: " | ")
    }

    /// Polls `condition` every 100 ms until it returns a value or `seconds` pass.
    static func wait<T>(seconds: Int, _ condition: () -> T?) -> T? {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let deadline = ts.tv_sec + seconds
        while true {
            if let value = condition() { return value }
            clock_gettime(CLOCK_MONOTONIC, &ts)
            if ts.tv_sec >= deadline { return nil }
            usleep(100_000)
        }
    }
}

/// How tor is told to re-read its torrc.
enum ReloadMethod {
    case command([String])
    case signalPidFile(String)

    /// systemd: `systemctl reload tor@default` (Debian's unit, what `tor.service` propagates
    /// to); otherwise SIGHUP to the pid in /run/tor/tor.pid.
    static func systemDefault() -> ReloadMethod {
        var st = stat()
        if lstat("/run/systemd/system", &st) == 0, st.st_mode & 0o170000 == 0o040000 {
            return .command(["systemctl", "reload", "tor@default"])
        }
        return .signalPidFile("/run/tor/tor.pid")
    }

    func perform() throws(HelperFailure) {
        switch self {
        case .command(let argv):
            let result = try Spawn.run(argv)
            guard result.status == 0 else {
                let out = result.output.trimmingCharacters(in: " \n")
                throw HelperFailure(.reloadFailed, "\(argv.joined(separator: " ")) exited with status \(result.status)"
                                    + (out.isEmpty ? "" : ": \(out)"))
            }
        case .signalPidFile(let file):
            let text = String(decoding: (try? TorrcFile.readFile(file)) ?? [], as: UTF8.self).trimmingCharacters(in: " \n")
            guard let pid = Int32(text), pid > 1 else {
                throw HelperFailure(.reloadFailed, "no tor pid in \(file); is tor running?")
            }
            let comm = String(decoding: (try? TorrcFile.readFile("/proc/\(pid)/comm")) ?? [], as: UTF8.self)
            guard comm.trimmingCharacters(in: " \n") == "tor" else {
                throw HelperFailure(.reloadFailed, "pid \(pid) from \(file) is not tor")
            }
            // tor writes its pid file before it handles SIGHUP; a SIGHUP before that kills it.
            guard Self.catchesSIGHUP(pid) else {
                throw HelperFailure(.reloadFailed, "tor (pid \(pid)) is still starting (it does not handle SIGHUP yet); try again")
            }
            guard kill(pid, SIGHUP) == 0 else {
                throw HelperFailure(.reloadFailed, "cannot signal tor (pid \(pid)): \(errnoText())")
            }
        }
    }
}

extension ReloadMethod {
    /// Whether `pid` has a handler for SIGHUP (bit 0 of SigCgt in /proc/PID/status).
    static func catchesSIGHUP(_ pid: Int32) -> Bool {
        let status = String(decoding: (try? TorrcFile.readFile("/proc/\(pid)/status")) ?? [], as: UTF8.self)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigCgt:") }),
              let mask = UInt64(String(line.dropFirst(7)).trimmingCharacters(in: " \t"), radix: 16) else { return false }
        return mask & 1 != 0
    }
}

extension String {
    /// Without leading and trailing characters from `set` (Foundation-free).
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        return String(drop(while: { chars.contains($0) }).reversed().drop(while: { chars.contains($0) }).reversed())
    }
}
