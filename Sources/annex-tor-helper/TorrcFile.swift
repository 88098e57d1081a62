#if canImport(Glibc)
import Glibc
#endif
import TorrcKit

/// The torrc on disk: locked, read, replaced atomically (temp file in the same directory,
/// same owner and mode, fsync, rename, fsync of the directory), backed up beside itself.
struct TorrcFile {
    static let systemCandidates = ["/etc/tor/torrc", "/etc/torrc", "/usr/local/etc/tor/torrc"]

    /// The real path (symlinks resolved, so a linked torrc is edited where it lives).
    let path: String
    let directory: String
    let original: [UInt8]
    let owner: uid_t, group: gid_t, mode: mode_t
    private let lockFD: Int32

    var backupPath: String { path + ".annex-tor-helper.bak" }

    /// Locks the torrc's directory (flock, so two helpers take turns) and reads the torrc.
    init(path requested: String?) throws(HelperFailure) {
        let chosen = requested ?? Self.systemCandidates.first { access($0, F_OK) == 0 } ?? Self.systemCandidates[0]
        guard let real = realpath(chosen, nil) else {
            throw HelperFailure(.torrcUnreadable, "cannot read torrc \(chosen): \(errnoText())")
        }
        path = String(cString: real)
        free(real)
        directory = parentDirectory(of: path)
        lockFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard lockFD >= 0, flock(lockFD, LOCK_EX) == 0 else {
            throw HelperFailure(.ioError, "cannot lock \(directory): \(errnoText())")
        }
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & 0o170000 == 0o100000 else {
            throw HelperFailure(.torrcUnreadable, "torrc \(path) is not a regular file")
        }
        owner = st.st_uid; group = st.st_gid; mode = st.st_mode & 0o7777
        original = try Self.readFile(path)
    }

    static func readFile(_ path: String) throws(HelperFailure) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HelperFailure(.torrcUnreadable, "cannot read \(path): \(errnoText())") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw HelperFailure(.torrcUnreadable, "cannot read \(path): \(errnoText())") }
            if n == 0 { return bytes }
            bytes += buffer[0..<n]
            guard bytes.count <= 16 << 20 else { throw HelperFailure(.torrcUnreadable, "\(path) is over 16 MiB") }
        }
    }

    /// Writes `bytes` to a new temp file beside the torrc with its owner and mode.
    func writeTemp(_ bytes: [UInt8]) throws(HelperFailure) -> String {
        var template = ((directory == "/" ? "" : directory) + "/.torrc.annex-tor-helper.XXXXXX").utf8CString
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw HelperFailure(.ioError, "cannot create a temp file in \(directory): \(errnoText())") }
        let temp = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer { close(fd) }
        do throws(HelperFailure) {
            guard fchown(fd, owner, group) == 0, fchmod(fd, mode) == 0 else {
                throw HelperFailure(.ioError, "cannot set owner/mode of \(temp): \(errnoText())")
            }
            try writeAll(fd, bytes, what: temp)
            guard fsync(fd) == 0 else { throw HelperFailure(.ioError, "fsync \(temp): \(errnoText())") }
        } catch {
            unlink(temp)
            throw error
        }
        return temp
    }

    /// Moves a temp file over `target` atomically and makes the rename durable.
    func install(_ temp: String, as target: String) throws(HelperFailure) {
        guard rename(temp, target) == 0 else {
            let message = errnoText()
            unlink(temp)
            throw HelperFailure(.ioError, "cannot rename \(temp) to \(target): \(message)")
        }
        fsync(lockFD)
    }

    /// Keeps a copy of the current torrc beside it (replacing an older backup).
    func writeBackup() throws(HelperFailure) {
        try install(try writeTemp(original), as: backupPath)
    }

    /// Puts the original bytes back (rollback).
    func restoreOriginal() throws(HelperFailure) {
        try install(try writeTemp(original), as: path)
    }

    /// True when the torrc on disk holds exactly the original bytes.
    var isOriginal: Bool { (try? Self.readFile(path)) == original }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8], what: String) throws(HelperFailure) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw HelperFailure(.ioError, "write \(what): \(errnoText())") }
            offset += n
        }
    }
}

/// "/a/b/c" -> "/a/b"; "/c" -> "/".
func parentDirectory(of path: String) -> String {
    let parent = path.split(separator: "/").dropLast().map { "/" + $0 }.joined()
    return parent.isEmpty ? "/" : parent
}
