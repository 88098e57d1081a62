#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit

/// The private Tor network the integration tests share (`PrivateTorNetwork`, `scripts/tor-testnet`):
/// it bootstraps, a tor joined to it publishes an onion reachable through the network's client,
/// and `tor-testnet stop` leaves none of its tors behind. Needs tor installed: without it these
/// tests fail (CI installs it), they do not skip.
@Suite(.timeLimit(minutes: 10)) struct PrivateTorNetworkTests {
    /// A unix-socket server answering every connection with one line: the onion's backend.
    static let lineServer = """
    import os, socket, sys
    path, line = sys.argv[1], sys.argv[2].encode() + b"\\n"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(8)
    while True:
        c, _ = s.accept()
        c.sendall(line)
        c.close()
    """

    /// A SOCKS5 client by hand (no auth, domain name target): prints the first line the target sends.
    static let socksClient = """
    import socket, sys
    socks_port, host, port = int(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3])
    s = socket.create_connection(("127.0.0.1", socks_port), timeout=30)
    s.sendall(b"\\x05\\x01\\x00")
    assert s.recv(2) == b"\\x05\\x00", "SOCKS method refused"
    s.sendall(b"\\x05\\x01\\x00\\x03" + bytes([len(host)]) + host + port.to_bytes(2, "big"))
    head = s.recv(10)
    if len(head) < 2 or head[1] != 0:
        sys.exit("SOCKS reply %r" % head)
    data = b""
    while not data.endswith(b"\\n"):
        chunk = s.recv(100)
        if not chunk:
            break
        data += chunk
    sys.stdout.write(data.decode())
    """

    @Test func clientBootstraps() async throws {
        let net = try await PrivateTorNetwork.shared()
        print("private tor network in \(net.dir): bootstrapped \(net.bootstrapSeconds) s, onion verified \(net.readySeconds) s after start")
        let clientLog = try String(contentsOfFile: net.dir + "/client/log", encoding: .utf8)
        #expect(clientLog.contains("Bootstrapped 100%"))
        let reply = try TorControl.query(port: net.controlPort, cookiePath: net.controlCookiePath,
                                         "GETINFO status/bootstrap-phase status/circuit-established")
        #expect(reply.contains { $0.contains("PROGRESS=100") }, "\(reply)")
        #expect(reply.contains("250-status/circuit-established=1"), "\(reply)")
        #expect(net.joinTorrcLines.contains("TestingTorNetwork 1"))
        #expect(net.joinTorrcLines.filter { $0.hasPrefix("DirAuthority ") }.count == 3)
        for pid in net.pids { #expect(PrivateTorNetwork.isTor(pid, of: net.dir), "tor \(pid) of the network is not running") }
    }

    /// A torrc onion service (what git-annex enable-tor sets up) on a tor joined via join_torrc,
    /// reached through the network's client SOCKS port.
    @Test func joinedTorPublishesAReachableOnion() async throws {
        let net = try await PrivateTorNetwork.shared()
        let scratch = Scratch("annexd-tnhs")
        let hsDir = scratch.path + "/hs", socketPath = scratch.path + "/s"
        #expect(mkdir(hsDir, 0o700) == 0)
        try #require(socketPath.utf8.count < 107)
        let greeting = "hello from an onion \(UInt32.random(in: 0...UInt32.max))"
        let server = try ChildProcess(["python3", "-c", Self.lineServer, socketPath, greeting], quietStderr: true)
        defer { kill(server.pid, SIGKILL); server.wait() }

        let tor = try net.startExtraTor(name: "hs", extraLines: [
            "HiddenServiceDir \(hsDir)",
            "HiddenServicePort 80 unix:\(socketPath)",
        ], waitBootstrapped: false)
        let onion = try tor.hostname(hiddenServiceDir: hsDir)
        #expect(onion.hasSuffix(".onion") && onion.count == 62, "\(onion)")
        try tor.waitForLog("Bootstrapped 100%")
        let bootstrapped = Date().timeIntervalSince(tor.started)

        var attempts = 0, last = ""
        let deadline = Date().addingTimeInterval(120)
        while true {
            attempts += 1
            let r = try Command.run(["python3", "-c", Self.socksClient, "\(net.socksPort)", onion, "80"])
            if r.status == 0 && r.stdout == greeting + "\n" { break }
            last = "status \(r.status): \(r.stdout)\(r.stderr)"
            guard Date() < deadline else {
                Issue.record("\(onion) not reachable through the client after 120 s (\(attempts) tries), last: \(last)\n\(tor.log)")
                return
            }
            try await Task.sleep(nanoseconds: 250_000_000)
        }
        let reachable = Date().timeIntervalSince(tor.started)
        print("joined tor: bootstrapped \(String(format: "%.1f", bootstrapped)) s, onion \(onion) reachable "
              + "\(String(format: "%.1f", reachable)) s after its start (\(attempts) tries)")
        // The same onion through the joined tor's own SOCKS port: it is a usable client too.
        let own = try Command.run(["python3", "-c", Self.socksClient, "\(tor.socksPort)", onion, "80"])
        #expect(own.stdout == greeting + "\n", "through the joined tor's SOCKS port: \(own.stdout)\(own.stderr)")
    }

    /// A network of its own (beside the shared one, in its own port range), with an extra tor:
    /// `tor-testnet stop` ends every one of them.
    @Test func stopLeavesNoTors() async throws {
        let net = try await Task.detached { try PrivateTorNetwork.start() }.value
        let extra = try net.startExtraTor(name: "extra", waitBootstrapped: false)
        let before = PrivateTorNetwork.processes(under: net.dir)
        #expect(Set(before) == Set(net.pids + [extra.pid]), "tors of \(net.dir): \(before)")
        if let shared = PrivateTorNetwork.sharedIfStarted {
            #expect(shared.socksPort != net.socksPort, "two networks, two port ranges")
        }

        let report = try net.stop()
        #expect(report.split(separator: "\n").count == 7, "\(report)")
        let after = PrivateTorNetwork.processes(under: net.dir)
        #expect(after.isEmpty, "still running after tor-testnet stop: \(after)")
        #expect(!extra.isRunning)
        extra.stop()   // reaps the extra tor (our child)
        let status = try Command.run([PrivateTorNetwork.script, "status", net.dir])
        #expect(status.status != 0)
    }
}

/// One command on tor's control port with cookie authentication: the reply lines.
enum TorControl {
    static func query(port: Int, cookiePath: String, _ command: String, timeout: TimeInterval = 10) throws -> [String] {
        let cookie = try Data(contentsOf: URL(fileURLWithPath: cookiePath)).map { String(format: "%02x", $0) }.joined()
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard ok else { throw PrivateTorNetwork.Failure(description: "cannot connect to tor's control port \(port)") }
        let request = Array("AUTHENTICATE \(cookie)\r\n\(command)\r\nQUIT\r\n".utf8)
        try request.withUnsafeBytes { try Posix.writeAll(fd: fd, $0, what: "tor control") }
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            data += buf[0..<n]
        }
        let lines = String(decoding: data, as: UTF8.self).components(separatedBy: "\r\n").filter { !$0.isEmpty }
        guard lines.first == "250 OK" else { throw PrivateTorNetwork.Failure(description: "tor control: \(lines)") }
        return lines
    }
}
