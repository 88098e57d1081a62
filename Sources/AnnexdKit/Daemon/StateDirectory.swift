#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Shared

/// annexd's state directory (`$XDG_STATE_HOME/annexd` or `--state-dir`): the
/// registry, onion keys and peer records, 0700, owned by one running daemon.
public final class StateDirectory: @unchecked Sendable {
    public let path: String
    private var lockFD: Int32 = -1

    public struct InUse: Error, CustomStringConvertible {
        public let path: String
        public let pid: String?
        public var description: String {
            "another annexd\(pid.map { " (pid \($0))" } ?? "") is already running with state directory \(path); "
                + "stop it first (annex-cli daemon stop, or kill it), or give this one another --state-dir"
        }
    }

    public static func defaultPath() -> String {
        let env = ProcessInfo.processInfo.environment
        let base = env["XDG_STATE_HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil }
            ?? (env["HOME"] ?? NSHomeDirectory()) + "/.local/state"
        return base + "/annexd"
    }

    /// Creates (0700) and locks the directory; throws `InUse` if another daemon holds it.
    public init(path: String) throws {
        self.path = path
        try Posix.makeDirectories(path, mode: 0o700)
        chmod(path, 0o700)
        for sub in ["keys", "p2p"] {
            try Posix.makeDirectories(path + "/" + sub, mode: 0o700)
            chmod(path + "/" + sub, 0o700)
        }
        let lockPath = path + "/annexd.lock"
        lockFD = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else { throw SystemError("open", path: lockPath) }
        if flock(lockFD, LOCK_EX | LOCK_NB) != 0 {
            let pid = (try? String(contentsOfFile: lockPath, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            close(lockFD)
            lockFD = -1
            throw InUse(path: path, pid: pid?.isEmpty == false ? pid : nil)
        }
        ftruncate(lockFD, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(lockFD, $0, strlen($0)) }
    }

    deinit {
        if lockFD >= 0 { close(lockFD) }
    }

    /// A file of the state directory could not be written (read-only, full, permissions):
    /// the change it records was not made.
    public struct Unwritable: ServiceError {
        public let file: String
        public let error: String
        public var kind: FailureKind { .unavailable }
        public var reason: String { "state_unwritable" }
        public var description: String {
            "cannot save \(file) (\(error)): nothing was changed; make the state directory writable and try again"
        }
    }

    /// Writes a file atomically (temp file, fsync, rename) with the given mode; `Unwritable` if it cannot.
    public func writeAtomically(_ name: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws {
        try Self.save(path + "/" + name, bytes, mode: mode)
    }

    /// `writeAtomically` of a file the daemon's state depends on: `Unwritable` if it cannot.
    public static func save(_ target: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws(Unwritable) {
        do { try writeAtomically(target, bytes, mode: mode) } catch {
            throw Unwritable(file: target, error: "\(error)")
        }
    }

    public static func writeAtomically(_ target: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws {
        try writeAtomically(target, mode: mode) { write in try write(bytes) }
    }

    /// Writes what `produce` hands its `write` piece by piece (a large file is never held
    /// whole), then puts the file in place at once.
    public static func writeAtomically(_ target: String, mode: mode_t = 0o600,
                                       _ produce: (_ write: ([UInt8]) throws -> Void) throws -> Void) throws {
        // A name no other writer uses (O_EXCL): concurrent writers each rename their own complete file.
        let tmp = target + ".tmp\(getpid())." + Hex.encode(Sodium.randomBytes(8))
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SystemError("create", path: tmp) }
        do {
            fchmod(fd, mode)
            try produce { bytes in try bytes.withUnsafeBytes { try Posix.writeAll(fd: fd, $0, what: tmp) } }
            try Posix.fsync(fd: fd, path: tmp)
            close(fd)
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        guard rename(tmp, target) == 0 else {
            let e = SystemError("rename", path: target)
            unlink(tmp)
            throw e
        }
        Posix.fsyncDirectory(Posix.dirname(target))
    }

    public func read(_ name: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path + "/" + name).map { [UInt8]($0) }
    }
}
