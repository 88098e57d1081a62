#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Shared
import Synchronization

/// Who may connect to a repository's listener, and with what access.
public protocol P2PAuthenticator: Sendable {
    /// nil: refused. Called for every AUTH; must compare tokens in constant time.
    func grant(clientUUID: String, token: String) -> PeerGrant?
}

/// What an accepted token gives: its access, and the name of the peer it was made for
/// (nil for a token annexd did not make, e.g. one from `git annex p2p --gen-addresses`).
public struct PeerGrant: Sendable, Equatable {
    public var access: PeerAccess
    public var peer: String?
    public init(access: PeerAccess, peer: String? = nil) {
        self.access = access
        self.peer = peer
    }
}

public enum PeerAccess: String, Sendable, Equatable {
    case readWrite = "read-write"
    case readOnly = "read-only"
}

/// Serves one repository's P2P protocol on a unix socket (what tor's onion
/// port maps to), with AUTH. Connections are served on their own threads with
/// the same session code as `p2p-stdio`.
public final class P2PListener: @unchecked Sendable {
    public struct Limits: Sendable {
        /// Connections not yet authenticated, at once; more are closed at accept.
        public var maxUnauthenticated = 32
        /// All connections at once.
        public var maxConnections = 256
        /// Seconds an unauthenticated connection may stay silent.
        public var authTimeout: Int = 30
        /// AUTH attempts per connection.
        public var maxAuthAttempts = 3
        /// Delay after a failed AUTH, doubling with each recent failure on this listener, up to `maxFailureDelay`.
        public var baseFailureDelay = 0.05
        public var maxFailureDelay = 2.0
        public init() {}
    }

    public let socketPath: String
    public let store: ObjectStore
    let authenticator: P2PAuthenticator
    let limits: Limits
    let events: P2PServerEvents?
    let report: @Sendable (String) -> Void

    private var listenFD: Int32 = -1
    private struct Counts {
        var total = 0
        var unauthenticated = 0
        var open: Set<Int32> = []
        var recentFailures = 0
        var lastFailure = 0.0
        var stopping = false
    }
    private let counts = Mutex(Counts())
    private let acceptDone = DispatchSemaphore(value: 0)

    public init(socketPath: String, store: ObjectStore, authenticator: P2PAuthenticator, limits: Limits = .init(),
                events: P2PServerEvents? = nil, report: @escaping @Sendable (String) -> Void) {
        self.socketPath = socketPath
        self.store = store
        self.authenticator = authenticator
        self.limits = limits
        self.events = events
        self.report = report
    }

    public func start() throws {
        Posix.ignoreSIGPIPE()
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(socketPath.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw SystemError("bind (path longer than \(MemoryLayout.size(ofValue: addr.sun_path) - 1) bytes)", path: socketPath, errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes + [0]) }
        unlink(socketPath)
        let len = socklen_t(MemoryLayout<sockaddr_un>.size)
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        guard bound == 0 else { let e = SystemError("bind", path: socketPath); close(fd); throw e }
        chmod(socketPath, 0o600)
        guard listen(fd, 128) == 0 else { let e = SystemError("listen", path: socketPath); close(fd); throw e }
        listenFD = fd
        let t = Thread { [self] in acceptLoop() }
        t.stackSize = 256 << 10
        t.start()
    }

    /// Stops accepting; open sessions see end of input (a transfer in flight
    /// keeps its partial for resume). Waits for the accept loop to end.
    public func stop() {
        let fds: Set<Int32> = counts.withLock { c in
            c.stopping = true
            return c.open
        }
        if listenFD >= 0 { shutdown(listenFD, Int32(SHUT_RDWR)) }
        for fd in fds { shutdown(fd, Int32(SHUT_RD)) }
        if listenFD >= 0 { acceptDone.wait(); close(listenFD); listenFD = -1 }
        unlink(socketPath)
    }

    public var connectionCount: Int { counts.withLock { $0.total } }

    private func acceptLoop() {
        defer { acceptDone.signal() }
        while true {
            let fd = accept(listenFD, nil, nil)
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                if errno == EMFILE || errno == ENFILE { usleep(100_000); continue }
                return
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            let admitted = counts.withLock { c -> Bool in
                guard !c.stopping, c.total < limits.maxConnections, c.unauthenticated < limits.maxUnauthenticated else { return false }
                c.total += 1
                c.unauthenticated += 1
                c.open.insert(fd)
                return true
            }
            guard admitted else { close(fd); continue }
            let t = Thread { [self] in serve(fd) }
            t.stackSize = 512 << 10
            t.start()
        }
    }

    private func serve(_ fd: Int32) {
        var authenticated = false
        defer {
            counts.withLock { c in
                c.total -= 1
                if !authenticated { c.unauthenticated -= 1 }
                c.open.remove(fd)
            }
            close(fd)
        }
        setTimeout(fd, seconds: limits.authTimeout)
        let conn = FDConnection(readFD: fd, writeFD: fd)
        let session = P2PServerSession(
            connection: conn, store: store,
            config: .init(serverUUID: store.repo.uuid, maxAuthAttempts: limits.maxAuthAttempts),
            events: events,
            authenticateAccess: { [self] uuid, token in
                let grant = authenticator.grant(clientUUID: uuid, token: token)
                if let grant {
                    authenticated = true
                    counts.withLock { $0.unauthenticated -= 1 }
                    setTimeout(fd, seconds: 0)
                    return grant
                }
                penalize()
                return nil
            },
            report: report)
        do { try session.run() } catch { report("P2P session on \(socketPath): \(error)") }
    }

    /// A failed AUTH costs time, doubling with every recent failure on this
    /// listener up to `maxFailureDelay`, and failures are answered one after
    /// another, so opening more connections does not buy more guesses.
    private func penalize() {
        let until = counts.withLock { c -> Double in
            let now = Date().timeIntervalSince1970
            if now - c.lastFailure > limits.maxFailureDelay * 4 { c.recentFailures = 0 }
            c.recentFailures += 1
            let delay = min(limits.baseFailureDelay * pow(2, Double(min(c.recentFailures - 1, 30))), limits.maxFailureDelay)
            c.lastFailure = max(now, c.lastFailure) + delay
            return c.lastFailure
        }
        let wait = until - Date().timeIntervalSince1970
        if wait > 0 { usleep(useconds_t(min(wait, 3600) * 1_000_000)) }
    }

    private func setTimeout(_ fd: Int32, seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }
}
