import Foundation
import Shared

/// CONNECT: runs git-upload-pack or git-receive-pack on the repository and
/// relays its protocol in DATA frames both ways until the service exits.
enum GitService {
    static func relay(service: String, repo: AnnexRepo, connection conn: FDConnection,
                      report: (String) -> Void) throws -> Int32 {
        let child = try ChildProcess(["git", String(service.dropFirst(4)), repo.path])
        try conn.flush()

        // Service output -> DATA frames, on its own thread.
        let outFD = child.stdoutFD
        let writeFD = conn.writeFD
        let pumpDone = DispatchSemaphore(value: 0)
        let pump = Thread {
            defer { pumpDone.signal() }
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buf.withUnsafeMutableBytes { read(outFD, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                var frame = Array("DATA \(n)\n".utf8)
                frame.append(contentsOf: buf[0..<n])
                do { try frame.withUnsafeBytes { try Posix.writeAll(fd: writeFD, $0, what: "to peer") } } catch { break }
            }
        }
        pump.start()

        // Client DATA frames -> service input, until the client stops sending or
        // the service stops reading. The thread is left blocked on the connection
        // when the service ends first: the session ends right after CONNECTDONE.
        let inFD = child.stdinFD
        let feeder = Thread {
            while true {
                // Reading only: the session's thread sends CONNECTDONE on this connection meanwhile.
                guard let line = try? conn.readLine(flushing: false) else { break }
                guard case .data(let n)? = try? P2PMessage.parse(line) else { break }
                do {
                    try conn.readPayload(count: n) { try Posix.writeAll(fd: inFD, $0, what: "to git") }
                } catch { break }
            }
            child.closeStdin()
        }
        feeder.start()
        pumpDone.wait()
        let status = child.wait()
        return status
    }
}
