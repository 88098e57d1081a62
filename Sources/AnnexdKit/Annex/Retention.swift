#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// git-annex's content retention files (10.2025+): `<object>.rtm` holds a POSIX
/// time (`1795710122.533697024s`) before which the content must not be removed,
/// written under an exclusive lock on `<object>.rtl`. A LOCKCONTENT writes one
/// 10 minutes ahead, so a drop cannot slip in when the locking connection dies.
final class Retention {
    let objectPath: String
    let stamp: String

    private init(objectPath: String, stamp: String) {
        self.objectPath = objectPath
        self.stamp = stamp
    }

    static func retain(_ objectPath: String, seconds: Double) -> Retention? {
        let until = Date().timeIntervalSince1970 + seconds
        let stamp = String(format: "%.9fs", until)
        let ok = withDirectoryWritable(objectPath) { () -> Bool in
            Self.withLock(objectPath) {
                let tmp = objectPath + ".rtm.tmp\(getpid())"
                guard FileManager.default.createFile(atPath: tmp, contents: Data(stamp.utf8)) else { return false }
                return rename(tmp, objectPath + ".rtm") == 0
            }
        }
        return ok ? Retention(objectPath: objectPath, stamp: stamp) : nil
    }

    /// Ends this retention if no one replaced the timestamp meanwhile.
    func end() {
        Self.withDirectoryWritable(objectPath) {
            Self.withLock(objectPath) {
                if let current = try? String(contentsOfFile: objectPath + ".rtm", encoding: .utf8), current == stamp {
                    unlink(objectPath + ".rtm")
                    unlink(objectPath + ".rtl")
                }
            }
        }
    }

    /// True while an unexpired retention timestamp protects the content.
    static func isRetained(_ objectPath: String) -> Bool {
        guard let text = try? String(contentsOfFile: objectPath + ".rtm", encoding: .utf8) else { return false }
        let digits = text.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "s", with: "")
        guard let until = Double(digits) else { return false }
        return Date().timeIntervalSince1970 <= until
    }

    /// Removes stale retention files (call with the content's exclusive lock held).
    static func clear(_ objectPath: String) {
        unlink(objectPath + ".rtm")
        unlink(objectPath + ".rtl")
    }

    @discardableResult
    private static func withLock<T>(_ objectPath: String, _ body: () -> T) -> T {
        let fd = open(objectPath + ".rtl", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        defer { if fd >= 0 { close(fd) } }
        if fd >= 0 {
            var fl = flock()
            fl.l_type = Int16(F_WRLCK)
            fl.l_whence = Int16(SEEK_SET)
            _ = fcntl(fd, F_SETLKW, &fl)
        }
        return body()
    }

    @discardableResult
    private static func withDirectoryWritable<T>(_ objectPath: String, _ body: () -> T) -> T {
        let dir = Posix.dirname(objectPath)
        var st = stat()
        guard stat(dir, &st) == 0, st.st_mode & S_IWUSR == 0 else { return body() }
        chmod(dir, st.st_mode | S_IWUSR)
        defer { chmod(dir, st.st_mode & 0o7777) }
        return body()
    }
}
