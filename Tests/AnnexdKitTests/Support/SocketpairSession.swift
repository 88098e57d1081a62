#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import AnnexdKit
import Shared

/// One P2PServerSession on one end of a socketpair, as a listener runs it; the test is the
/// client on the other end: it writes the client's whole byte stream (then half-closes),
/// and reads everything the server writes until the server closes.
struct SocketpairSession {
    /// Every byte the server wrote.
    var serverBytes: [UInt8] = []
    /// The session ended before the client's stream did (it stopped reading first).
    var serverClosedFirst = false
    /// What went wrong in the harness or the session (a thrown error, a timeout).
    var problems: [String] = []
    /// The session's operator diagnostics.
    var reports: [String] = []

    private final class Box: @unchecked Sendable {
        var atEOF = false
        var error: String?
        var reports: [String] = []
    }

    static func serve(store: ObjectStore, config: P2PServerMachine.Config, clientBytes: [UInt8],
                      timeout: Int = 60) throws -> SocketpairSession {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw SystemError("socketpair")
        }
        let (serverFD, clientFD) = (fds[0], fds[1])
        defer { close(serverFD); close(clientFD) }

        let box = Box()
        let sessionDone = DispatchSemaphore(value: 0)
        Thread {
            let conn = FDConnection(readFD: serverFD, writeFD: serverFD)
            let session = P2PServerSession(connection: conn, store: store, config: config,
                                           report: { box.reports.append($0) })
            do { try session.run() } catch { box.error = "session: \(error)" }
            box.atEOF = conn.atEOF
            // As closing the connection would, minus reuse of the descriptor number.
            shutdown(serverFD, Int32(SHUT_RDWR))
            sessionDone.signal()
        }.start()

        let writerDone = DispatchSemaphore(value: 0)
        Thread {
            clientBytes.withUnsafeBytes { buf in
                var offset = 0
                while offset < buf.count {
                    let n = send(clientFD, buf.baseAddress! + offset, buf.count - offset, Int32(MSG_NOSIGNAL))
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }  // the server is gone
                    offset += n
                }
            }
            shutdown(clientFD, Int32(SHUT_WR))
            writerDone.signal()
        }.start()

        var result = SocketpairSession()
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(clientFD, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(clientFD, $0.baseAddress, $0.count) }
            if n > 0 { result.serverBytes += chunk[0..<n]; continue }
            if n < 0 && errno == EINTR { continue }
            // A unix socket closed with unread input reads ECONNRESET after its last byte.
            if n < 0 && errno != ECONNRESET { result.problems.append("reading the server: \(SystemError("read"))") }
            break
        }
        if sessionDone.wait(timeout: .now() + .seconds(timeout)) == .timedOut {
            result.problems.append("the session did not end within \(timeout) s")
            shutdown(serverFD, Int32(SHUT_RDWR))
            return result
        }
        writerDone.wait()
        if let e = box.error { result.problems.append(e) }
        result.serverClosedFirst = !box.atEOF
        result.reports = box.reports
        return result
    }
}
