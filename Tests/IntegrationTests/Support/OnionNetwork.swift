#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import AnnexdKit
import Shared

/// Stands in for the Tor network in tests: a SOCKS5 server on 127.0.0.1:9050
/// (the port stock git-annex hard-codes) that connects `<onion>:<port>` to a
/// unix socket. As root it runs in a private network namespace, so a tor
/// already on 9050 does not matter; commands that must use it run through
/// `run(_:in:)`. Unix sockets are reachable from the namespace as from anywhere.
final class OnionNetwork {
    struct Unavailable: Error, CustomStringConvertible { let description: String }

    let scratch = Scratch("annexd-onionnet")
    let namespace: NetNamespace?
    private var socks: Process
    var mapFile: String { scratch.path + "/map" }

    init() throws {
        _ = FileManager.default.createFile(atPath: scratch.path + "/map", contents: Data())
        if getuid() == 0 {
            namespace = try NetNamespace()
        } else {
            // Without root there is no private namespace: 9050 itself must be free.
            let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = UInt16(9050).bigEndian
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let busy = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            close(probe)
            if busy {
                throw Unavailable(description: "127.0.0.1:9050 is in use and only root can make a private network namespace")
            }
            namespace = nil
        }
        socks = try Self.startSocks(namespace: namespace, mapFile: scratch.path + "/map")
    }

    private static func startSocks(namespace: NetNamespace?, mapFile: String) throws -> Process {
        let script = TestEnvironment.packageRoot + "/Tests/IntegrationTests/Support/socks-standin.py"
        let socks = Process()
        socks.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let argv = ["python3", script, "127.0.0.1", "9050", mapFile]
        socks.arguments = namespace?.argv(argv) ?? argv
        let out = Pipe()
        socks.standardOutput = out
        try socks.run()
        // Wait for "ready" (bounded).
        let deadline = Date().addingTimeInterval(10)
        var seen = Data()
        while Date() < deadline, !String(decoding: seen, as: UTF8.self).contains("ready") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen.append(chunk)
        }
        guard String(decoding: seen, as: UTF8.self).contains("ready") else {
            socks.terminate()
            throw Unavailable(description: "the SOCKS stand-in did not start")
        }
        return socks
    }

    /// Kills the SOCKS stand-in (tor dying): every relayed connection breaks, and dialling
    /// 127.0.0.1:9050 is refused until `restartSOCKS()`.
    func killSOCKS() {
        kill(socks.processIdentifier, SIGKILL)
        socks.waitUntilExit()
    }

    /// Starts the stand-in again on the same port and routes.
    func restartSOCKS() throws {
        socks = try Self.startSocks(namespace: namespace, mapFile: mapFile)
    }

    deinit {
        kill(socks.processIdentifier, SIGKILL)
        socks.waitUntilExit()
    }

    /// Routes `<onion>:<port>` to the unix socket at `path`; with `latencyMs`, each connection
    /// is made, and each chunk passed on either way, that long after (a Tor circuit's latency).
    /// A later call for the same name replaces the route.
    func map(_ onionAndPort: String, to path: String, latencyMs: Int = 0) throws {
        let line = "\(onionAndPort) \(path)\(latencyMs > 0 ? " \(latencyMs)" : "")\n"
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: mapFile))
        h.seekToEndOfFile()
        h.write(Data(line.utf8))
        try h.close()
    }

    /// Runs a shell script where 127.0.0.1:9050 is the stand-in.
    @discardableResult
    func run(_ script: String, in cwd: String, annex: TestEnvironment.GitAnnex, allowFailure: Bool = false) throws -> String {
        guard let namespace else { return try sh(script, in: cwd, annex: annex, allowFailure: allowFailure) }
        return try namespace.run(script, in: cwd, annex: annex, allowFailure: allowFailure)
    }

    /// A fully valid v3 onion address (checksum, version, curve point) of a fresh key.
    static func fakeOnionValid() -> String { OnionKey.generate().onionAddress }

    /// A syntactically valid v3 onion name for tests (56 base32 characters).
    static func fakeOnion() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567")
        return String((0..<56).map { _ in alphabet.randomElement()! }) + ".onion"
    }
}
