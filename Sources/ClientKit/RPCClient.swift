#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Shared

/// A blocking JSON-RPC client over annexd's unix socket (annex-cli, annex-notify).
public final class RPCClient {
    public let path: String
    /// The connected socket, for poll(2) beside other descriptors (`readNotifications`).
    public let fd: Int32
    private var buffer: [UInt8] = []
    private var nextID: Int64 = 1

    public enum Failure: Error, CustomStringConvertible {
        case notRunning(String, String)
        case io(String)
        case rpc(RPCError)

        public var description: String {
            switch self {
            case .notRunning(let path, let why):
                return "annexd is not running (\(why) at \(path)). Start it with `annexd`, or `systemctl --user start annexd`; "
                    + "use --socket or ANNEXD_SOCKET if it listens elsewhere"
            case .io(let s): return s
            case .rpc(let e): return e.message
            }
        }
    }

    /// The socket clients use: `explicit` (--socket), else $ANNEXD_SOCKET, else
    /// $XDG_RUNTIME_DIR/annexd/rpc.sock, else /tmp/annexd-UID/rpc.sock (as the daemon picks).
    public static func socketPath(explicit: String? = nil,
                                  environment env: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let explicit { return explicit }
        if let s = env["ANNEXD_SOCKET"], !s.isEmpty { return s }
        if let runtime = env["XDG_RUNTIME_DIR"], runtime.hasPrefix("/") { return runtime + "/annexd/rpc.sock" }
        return "/tmp/annexd-\(getuid())/rpc.sock"
    }

    public init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure.io("cannot create a socket: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw Failure.io("socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes + [0]) }
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
        if !ok {
            let err = errno
            close(fd)
            if err == ENOENT { throw Failure.notRunning(path, "no socket") }
            if err == ECONNREFUSED { throw Failure.notRunning(path, "nothing listening") }
            throw Failure.io("cannot connect to \(path): \(String(cString: strerror(err)))")
        }
    }

    deinit { close(fd) }

    /// Calls `M` and decodes its result; notifications that arrive meanwhile go to `onNotification`.
    public func call<M: RPCMethod>(_ method: M.Type, _ params: M.Params, onNotification: ((RPCNotification) -> Void)? = nil) throws -> M.Result {
        let json = try callRaw(M.method, params.json, onNotification: onNotification)
        return try M.Result(json: json, path: "result")
    }

    public func callRaw(_ method: String, _ params: JSONValue?, onNotification: ((RPCNotification) -> Void)? = nil) throws -> JSONValue {
        let id = nextID
        nextID += 1
        try send(RPCRequest(id: .int(id), method: method, params: params).json.serializedBytes())
        while true {
            guard let line = try readLine() else { throw Failure.io("annexd closed the connection before answering \(method)") }
            let message: RPCServerMessage
            do { message = try RPCServerMessage(parsing: line) } catch {
                throw Failure.io("annexd sent something that is not JSON-RPC: \(error)")
            }
            switch message {
            case .notification(let n): onNotification?(n)
            case .response(let r) where r.id == .int(id) || r.id == .null:
                switch r.result {
                case .success(let v): return v
                case .failure(let e): throw Failure.rpc(e)
                }
            default: continue
            }
        }
    }

    /// Reads notifications until the connection ends (or `handler` returns false).
    public func follow(_ handler: (RPCNotification) -> Bool) throws {
        while let line = try readLine() {
            if case .notification(let n)? = try? RPCServerMessage(parsing: line), !handler(n) { return }
        }
    }

    /// The notifications that have arrived, without blocking beyond one read(2) (call it when
    /// poll(2) says `fd` is readable, or to drain what an earlier call left buffered); nil when
    /// the connection has ended and nothing is left.
    public func readNotifications(readingSocket: Bool) throws -> [RPCNotification]? {
        var ended = false
        if readingSocket {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno != EINTR && errno != EAGAIN { throw Failure.io("cannot read from annexd: \(String(cString: strerror(errno)))") }
            if n == 0 { ended = true }
            if n > 0 { buffer.append(contentsOf: chunk[0..<n]) }
        }
        var out: [RPCNotification] = []
        while let nl = buffer.firstIndex(of: 10) {
            let line = Array(buffer[..<nl])
            buffer.removeSubrange(...nl)
            if case .notification(let n)? = try? RPCServerMessage(parsing: line) { out.append(n) }
        }
        return ended && out.isEmpty ? nil : out
    }

    private func send(_ bytes: [UInt8]) throws {
        var data = bytes
        data.append(10)
        var off = 0
        while off < data.count {
            let n = data.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 { if errno == EINTR { continue }; throw Failure.io("cannot write to annexd: \(String(cString: strerror(errno)))") }
            off += n
        }
    }

    private func readLine() throws -> [UInt8]? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                return line
            }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw Failure.io("cannot read from annexd: \(String(cString: strerror(errno)))") }
            if n == 0 { return nil }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }
}
