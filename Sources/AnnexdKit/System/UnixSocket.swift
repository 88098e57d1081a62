#if canImport(Glibc)
import Glibc
#endif

/// Client side of unix stream sockets (the RPC socket, P2P listener sockets).
public enum UnixSocket {
    /// Connects to the socket at `path`; the descriptor is the caller's (close-on-exec).
    public static func connect(_ path: String) throws -> Int32 {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw SystemError("connect (path longer than \(MemoryLayout.size(ofValue: addr.sun_path) - 1) bytes)", path: path, errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes + [0]) }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket") }
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
        guard ok else {
            let e = SystemError("connect", path: path)
            close(fd)
            throw e
        }
        return fd
    }
}
