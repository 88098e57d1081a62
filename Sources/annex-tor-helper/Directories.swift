#if canImport(Glibc)
import Glibc
#endif
import TorrcKit

/// Directory set-up, done without following symlinks (the socket directory belongs to a
/// user, who must not be able to point root's chown elsewhere). Each returns how to undo it.
enum Directories {
    static let keepID = UInt32.max    // "unchanged" for fchown

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && st.st_mode & 0o170000 == 0o040000
    }

    /// Creates `path` (mode `mode`, owned by root) if missing; refuses symlinks and
    /// existing directories writable by anyone but their owner (root).
    static func ensureRootDirectory(_ path: String, mode: mode_t) throws(HelperFailure) -> Bool {
        var st = stat()
        if lstat(path, &st) == 0 {
            guard st.st_mode & 0o170000 == 0o040000 else { throw HelperFailure(.ioError, "\(path) is not a directory") }
            guard st.st_uid == geteuid(), st.st_mode & 0o022 == 0 else {
                throw HelperFailure(.ioError, "\(path) must be owned by uid \(geteuid()) and not group/world-writable")
            }
            return false
        }
        guard isDirectory(parentDirectory(of: path)) else {
            throw HelperFailure(.ioError, "cannot create \(path): \(parentDirectory(of: path)) is not a directory")
        }
        guard mkdir(path, mode) == 0, chmod(path, mode) == 0 else {
            throw HelperFailure(.ioError, "cannot create \(path): \(errnoText())")
        }
        return true
    }

    /// git-annex's prepHiddenServiceSocketDir: `<socket-root>/<uid>_<uuid>` exists, owned by
    /// uid (group unchanged), with u+rwx. Returns an undo that removes what was created.
    static func prepareSocketDir(_ layout: EnableTorLayout) throws(HelperFailure) -> () -> Void {
        let createdRoot = try ensureRootDirectory(layout.socketRoot, mode: 0o755)
        var created = false
        var st = stat()
        if lstat(layout.socketDir, &st) != 0 {
            guard mkdir(layout.socketDir, 0o755) == 0 else {
                throw HelperFailure(.ioError, "cannot create \(layout.socketDir): \(errnoText())")
            }
            created = true
        }
        let undo = {
            if created { rmdir(layout.socketDir) }
            if createdRoot { rmdir(layout.socketRoot) }
        }
        let fd = open(layout.socketDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            undo()
            throw HelperFailure(.ioError, "\(layout.socketDir) is not a directory (or is a symlink)")
        }
        defer { close(fd) }
        guard fstat(fd, &st) == 0, fchown(fd, layout.uid, keepID) == 0, fchmod(fd, (st.st_mode & 0o7777) | 0o700) == 0 else {
            let message = errnoText()
            undo()
            throw HelperFailure(.ioError, "cannot give \(layout.socketDir) to uid \(layout.uid): \(message)")
        }
        return undo
    }

    /// The control socket's directory. tor binds a GroupWritable control socket only in a
    /// directory owned by its own user and group (and dies on reload otherwise), so: create
    /// it that way (mode 02750) if missing, else insist that it already is. Returns an undo.
    static func prepareControlDir(_ dir: String, torUser: uid_t, torGroup: gid_t) throws(HelperFailure) -> () -> Void {
        var st = stat()
        if lstat(dir, &st) != 0 {
            guard isDirectory(parentDirectory(of: dir)), mkdir(dir, 0o700) == 0 else {
                throw HelperFailure(.ioError, "cannot create \(dir): \(errnoText())")
            }
            guard chown(dir, torUser, torGroup) == 0, chmod(dir, 0o2750) == 0 else {
                let message = errnoText()
                rmdir(dir)
                throw HelperFailure(.ioError, "cannot set up \(dir): \(message)")
            }
            return { rmdir(dir) }
        }
        guard st.st_mode & 0o170000 == 0o040000 else { throw .invalid("\(dir) is not a directory") }
        guard st.st_uid == torUser, st.st_gid == torGroup else {
            throw .invalid("\(dir) is owned by \(st.st_uid):\(st.st_gid), but tor (\(torUser):\(torGroup)) only binds a control "
                           + "socket in a directory of its own user and group; choose another --control-socket")
        }
        return {}
    }
}
