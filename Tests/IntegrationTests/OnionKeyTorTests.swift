#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import Shared
import AnnexdKit

/// OnionKey against the real tor: the address annexd computes must be the one tor derives
/// from the same key, whether tor reads it from a HiddenServiceDir, makes it itself, or gets
/// it through ADD_ONION. Every tor here runs with `DisableNetwork 1`: it touches no network,
/// yet still loads keys and writes `hostname` at startup.
@Suite(.timeLimit(minutes: 10)) struct OnionKeyTorTests {
    static let tor = "/usr/sbin/tor"
    static let timeout: TimeInterval = 30

    /// annexd's key in a HiddenServiceDir: tor writes our address to `hostname`.
    @Test func torServesOurKeyAtOurAddress() async throws {
        let scratch = Scratch("annexd-onion")
        let hsDir = scratch.path + "/hs"
        try makeDirectory(hsDir)
        let key = OnionKey.generate()
        try write(key.secretKeyFileBytes, to: hsDir + "/hs_ed25519_secret_key", mode: 0o600)

        let tor = try TorProcess(scratch: scratch, extraConfig: [
            "HiddenServiceDir \(hsDir)",
            "HiddenServicePort 80 127.0.0.1:9",
        ])
        defer { tor.stop() }
        let hostname = try await tor.waitForHostname(in: hsDir)

        #expect(hostname == key.onionAddress)
        // Tor kept our key file as it was and wrote the public half in the format we write.
        #expect(try read(hsDir + "/hs_ed25519_secret_key") == key.secretKeyFileBytes)
        #expect(try read(hsDir + "/hs_ed25519_public_key") == key.publicKeyFileBytes)
    }

    /// A key tor made itself: we read its files and compute the address it wrote.
    @Test func weReadTheKeyTorMade() async throws {
        let scratch = Scratch("annexd-onion")
        let hsDir = scratch.path + "/hs"
        try makeDirectory(hsDir)
        let tor = try TorProcess(scratch: scratch, extraConfig: [
            "HiddenServiceDir \(hsDir)",
            "HiddenServicePort 80 127.0.0.1:9",
        ])
        defer { tor.stop() }
        let hostname = try await tor.waitForHostname(in: hsDir)

        let key = try OnionKey(secretKeyFile: read(hsDir + "/hs_ed25519_secret_key"))
        #expect(key.onionAddress == hostname)
        #expect(try OnionKey.publicKey(fromPublicKeyFile: read(hsDir + "/hs_ed25519_public_key")) == key.publicKey)
        #expect(try read(hsDir + "/hs_ed25519_public_key") == key.publicKeyFileBytes)
        #expect(try OnionKey.publicKey(fromAddress: hostname) == key.publicKey)
    }

    /// ADD_ONION over a control socket: tor accepts our key blob and answers with our address,
    /// and a key tor makes with `NEW:ED25519-V3` parses back to the ServiceID it reports.
    @Test func addOnionTakesOurBlobAndGivesOneWeRead() async throws {
        let scratch = Scratch("annexd-onion")
        let socketPath = scratch.path + "/ctl"
        let tor = try TorProcess(scratch: scratch, extraConfig: ["ControlSocket \(socketPath)"])
        defer { tor.stop() }
        try await tor.waitFor("control socket \(socketPath)") { isSocket(socketPath) }

        let key = OnionKey.generate()
        let reply = try ControlConversation.run(socketPath: socketPath, timeout: Self.timeout, lines: [
            "AUTHENTICATE",
            "ADD_ONION \(key.addOnionKeyBlob) Port=80,127.0.0.1:9",
            "ADD_ONION NEW:ED25519-V3 Port=80,127.0.0.1:9",
            "QUIT",
        ], until: "250 closing connection")

        let serviceIDs = reply.compactMap { $0.hasPrefix("250-ServiceID=") ? String($0.dropFirst(14)) : nil }
        let privateKeys = reply.compactMap { $0.hasPrefix("250-PrivateKey=") ? String($0.dropFirst(15)) : nil }
        try #require(serviceIDs.count == 2 && privateKeys.count == 1, "unexpected control reply: \(reply)")
        #expect(serviceIDs[0] + ".onion" == key.onionAddress)
        let torsKey = try OnionKey(addOnionKeyBlob: privateKeys[0])
        #expect(torsKey.onionAddress == serviceIDs[1] + ".onion")
        #expect(torsKey.addOnionKeyBlob == privateKeys[0], "tor's base64 is padded like ours")
    }
}

// MARK: - A tor child on loopback with no network

/// A tor started with a minimal torrc in `scratch` (no SOCKS port, `DisableNetwork 1`), owned
/// by the test process (`__OwningControllerProcess`) so it exits even if the test runner dies.
private final class TorProcess {
    let process: BackgroundProcess
    let logPath: String

    init(scratch: Scratch, extraConfig: [String]) throws {
        let dataDir = scratch.path + "/data"
        try makeDirectory(dataDir)
        logPath = scratch.path + "/tor.log"
        let torrc = scratch.path + "/torrc", defaults = scratch.path + "/torrc-defaults"
        let config = [
            "SocksPort 0",
            "DisableNetwork 1",
            "DataDirectory \(dataDir)",
            "Log notice file \(logPath)",
            "__OwningControllerProcess \(getpid())",
        ] + extraConfig
        try write(Array((config.joined(separator: "\n") + "\n").utf8), to: torrc, mode: 0o600)
        try write([], to: defaults, mode: 0o600)
        // BackgroundProcess spawns with no signals blocked (Swift's worker threads block most,
        // and a child would inherit that mask and ignore SIGTERM).
        process = try BackgroundProcess([OnionKeyTorTests.tor, "--defaults-torrc", defaults, "-f", torrc, "--quiet"], logPath: nil)
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "(no log)" }

    /// Polls `condition` until it holds; fails if tor exits first or the timeout passes.
    func waitFor(_ what: String, timeout: TimeInterval = OnionKeyTorTests.timeout,
                 _ condition: () throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if try condition() { return }
            if let status = process.exited {
                throw TorTestFailure("tor exited (status \(status)) before \(what) appeared:\n\(log)")
            }
            guard Date() < deadline else {
                throw TorTestFailure("no \(what) after \(Int(timeout)) s:\n\(log)")
            }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
    }

    /// The address tor writes to `DIR/hostname` (without the newline), once it is complete.
    func waitForHostname(in hsDir: String) async throws -> String {
        var hostname = ""
        try await waitFor("\(hsDir)/hostname") {
            guard let text = try? String(contentsOfFile: hsDir + "/hostname", encoding: .utf8),
                  text.hasSuffix("\n") else { return false }
            hostname = String(text.dropLast())
            return true
        }
        return hostname
    }

    /// SIGTERM (a client tor exits at once), then SIGKILL after 5 s.
    func stop() { process.stop() }
}

private struct TorTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Sends control-protocol lines over a unix socket and reads reply lines until `until`,
/// every read bounded by `timeout`.
private enum ControlConversation {
    static func run(socketPath: String, timeout: TimeInterval, lines: [String], until last: String) throws -> [String] {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TorTestFailure("socket: errno \(errno)") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw TorTestFailure("control socket path too long: \(socketPath)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in pathBytes.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw TorTestFailure("connect \(socketPath): errno \(errno)") }

        let request = Array(lines.map { $0 + "\r\n" }.joined().utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else {
            throw TorTestFailure("send to tor: errno \(errno)")
        }
        var received = [UInt8](), chunk = [UInt8](repeating: 0, count: 4096)
        var replies: [String] = []
        while !replies.contains(last) {
            let n = recv(fd, &chunk, chunk.count, 0)
            guard n > 0 else {
                throw TorTestFailure("tor's control reply ended or timed out (\(n), errno \(errno)) after: \(replies)")
            }
            received += chunk[0..<n]
            replies = String(decoding: received, as: UTF8.self).components(separatedBy: "\r\n").filter { !$0.isEmpty }
        }
        return replies
    }
}

private func makeDirectory(_ path: String) throws {
    guard mkdir(path, 0o700) == 0 else { throw TorTestFailure("mkdir \(path): errno \(errno)") }
    _ = chmod(path, 0o700)  // mkdir's mode is masked by the umask; tor insists on exactly 0700
}

private func write(_ bytes: [UInt8], to path: String, mode: mode_t) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
    guard fd >= 0 else { throw TorTestFailure("open \(path): errno \(errno)") }
    defer { close(fd) }
    guard bytes.isEmpty || Glibc.write(fd, bytes, bytes.count) == bytes.count else {
        throw TorTestFailure("write \(path): errno \(errno)")
    }
    _ = fchmod(fd, mode)
}

private func read(_ path: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else { throw TorTestFailure("cannot read \(path)") }
    return [UInt8](data)
}

private func isSocket(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK
}
