#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
import Shared

/// The magic-wormhole 0.24 reference programs in the test venv (`.venv`, or ANNEXD_PYPI_VENV).
enum WormholeReference {
    static let venv = ProcessInfo.processInfo.environment["ANNEXD_PYPI_VENV"] ?? "\(TestEnvironment.packageRoot)/.venv"
    static var twist: String { venv + "/bin/twist" }
    static var wormhole: String { venv + "/bin/wormhole" }
    static var available: Bool {
        FileManager.default.isExecutableFile(atPath: twist) && FileManager.default.isExecutableFile(atPath: wormhole)
    }
}

/// A local `twist wormhole-mailbox` on 127.0.0.1 and a free port, stopped (SIGTERM, by pid)
/// when the value goes away.
final class LocalMailboxServer: @unchecked Sendable {  // immutable after init
    struct Failure: Error, CustomStringConvertible { let description: String }

    let scratch = Scratch("annexd-mailbox")
    let port: Int
    let pid: Int32
    /// With TLS the name is localhost (the test certificate's name).
    let tls: Bool
    var url: String { tls ? "wss://localhost:\(port)/v1" : "ws://127.0.0.1:\(port)/v1" }
    let logPath: String

    /// `namespace`: run inside that network namespace (its 127.0.0.1 is its own).
    /// `tls`: serve wss:// with this key and certificate (PEM files).
    init(extraArguments: [String] = [], namespace: String? = nil, tls: (key: String, cert: String)? = nil) throws {
        let port = try Self.freePort()
        self.port = port
        self.tls = tls != nil
        let logPath = scratch.path + "/mailbox.log"
        self.logPath = logPath
        let endpoint = tls.map { "ssl:\(port):privateKey=\($0.key):certKey=\($0.cert):interface=127.0.0.1" } ?? "tcp:\(port):interface=127.0.0.1"
        var args = [WormholeReference.twist, "wormhole-mailbox", "--port=\(endpoint)",
                    "--channel-db=\(scratch.path)/relay.sqlite"] + extraArguments
        args = args.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        // exec: the pid is twist's own; its log goes to a file so no pipe can fill up.
        let inNamespace = namespace.map { ["ip", "netns", "exec", $0] } ?? []
        child = try ChildProcess(inNamespace + ["sh", "-c", "exec " + args.joined(separator: " ") + " >'\(logPath)' 2>&1"],
                                 cwd: scratch.path)
        child.closeStdin()
        pid = child.pid
        // Ready when it accepts TCP connections (about 0.6 s after start).
        guard Self.waitListening(port, namespace: namespace) else {
            kill(pid, SIGTERM)
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            throw Failure(description: "the mailbox server did not listen on 127.0.0.1:\(port) within 20 s:\n\(log)")
        }
    }

    /// Polls until 127.0.0.1:`port` accepts (in `namespace`, through one small python3 there).
    static func waitListening(_ port: Int, namespace: String?, timeout: Double = 20) -> Bool {
        guard let namespace else {
            let deadline = Date().addingTimeInterval(timeout)
            while !accepts(port) {
                if Date() > deadline { return false }
                usleep(50_000)
            }
            return true
        }
        let probe = """
            import socket, sys, time
            end = time.time() + \(timeout)
            while time.time() < end:
                try:
                    socket.create_connection(("127.0.0.1", \(port)), 1).close(); sys.exit(0)
                except OSError:
                    time.sleep(0.05)
            sys.exit(1)
            """
        return (try? Command.run(["ip", "netns", "exec", namespace, "python3", "-c", probe]))?.status == 0
    }

    /// twist itself (sh execs it); its deinit reaps it after the SIGTERM below.
    private let child: ChildProcess

    deinit { kill(pid, SIGTERM) }

    /// A port free on 127.0.0.1 when this returns (nothing listens there).
    static func freePort() throws -> Int { try ClosedLoopbackPort().port }

    static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// Runs a blocking command on its own thread (not the cooperative pool).
func runOffPool(_ args: [String], stdin: String? = nil) async throws -> Command.Output {
    try await withCheckedThrowingContinuation { cont in
        Thread {
            do { cont.resume(returning: try Command.run(args, stdin: stdin.map { Data($0.utf8) })) } catch { cont.resume(throwing: error) }
        }.start()
    }
}

/// The Python CLI against a local mailbox, bounded by `timeout` so a hang fails the test.
func pythonWormhole(_ server: LocalMailboxServer, _ args: [String]) async throws -> Command.Output {
    try await runOffPool(["timeout", "60", WormholeReference.wormhole, "--relay-url", server.url] + args)
}

@Suite(.serialized, .timeLimit(minutes: 5),
       .enabled(if: WormholeReference.available, "needs magic-wormhole in .venv (make test creates it)"),
       .enabled(if: NetworkIsolation.onlyLoopback, NetworkIsolation.why))
struct WormholeInteropTests {
    /// Non-ASCII and a newline: the CLI prints `repr(text)[1:-1]`, so the newline shows as `\n`.
    static let text = "hello from annexd \u{e9}\u{4e2d}\nline2"
    static let printed = "hello from annexd \u{e9}\u{4e2d}\\nline2"

    func config(_ server: LocalMailboxServer) -> Wormhole.Configuration {
        Wormhole.Configuration(mailboxURL: server.url, timeout: .seconds(60))
    }

    @Test func swiftSendsPythonReceives() async throws {
        let server = try LocalMailboxServer()
        let codeBox = CodeBox()
        async let sent: Void = Wormhole.sendText(Self.text, configuration: config(server)) { codeBox.set($0) }
        let code = try await codeBox.wait()
        #expect(code.words.count == 2 && code.unlistedWords.isEmpty)
        let out = try await pythonWormhole(server, ["receive", code.text])
        try await sent
        #expect(out.status == 0, "wormhole receive failed: \(out.stderr)")
        #expect(out.stdout.trimmingCharacters(in: .newlines) == Self.printed)
    }

    @Test func pythonSendsSwiftReceives() async throws {
        let server = try LocalMailboxServer()
        let code = try WormholeCode(parsing: "17-adroitness-aardvark")
        async let out = pythonWormhole(server, ["send", "--hide-progress", "--no-qr", "--text", Self.text, "--code", code.text])
        let text = try await Wormhole.receiveText(code: code, configuration: config(server))
        let result = try await out
        #expect(text == Self.text)
        #expect(result.status == 0, "wormhole send failed: \(result.stderr)")
    }

    @Test func pythonAllocatesSwiftReceives() async throws {
        // The sender's code is read from its stderr ("Wormhole code is: 4-…"), as git-annex does.
        let server = try LocalMailboxServer()
        let log = server.scratch.path + "/send.err"
        let sender = try ChildProcess(["sh", "-c", "exec timeout 60 '\(WormholeReference.wormhole)' --relay-url '\(server.url)' "
                                           + "send --hide-progress --no-qr --text 'allocated by python' 2>'\(log)'"])
        sender.closeStdin()
        var code: WormholeCode?
        let deadline = Date().addingTimeInterval(20)
        while code == nil && Date() < deadline {
            let err = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let line = err.split(separator: "\n").first(where: { $0.hasPrefix("Wormhole code is: ") }) {
                code = try WormholeCode(parsing: String(line.dropFirst("Wormhole code is: ".count)))
            } else {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        let c = try #require(code, "the Python sender printed no code")
        #expect(try await Wormhole.receiveText(code: c, configuration: config(server)) == "allocated by python")
        let status = await Task.detached { sender.wait() }.value
        #expect(status == 0)
    }

    @Test func swiftToSwiftThroughTheRealServer() async throws {
        let server = try LocalMailboxServer()
        let codeBox = CodeBox()
        async let sent: Void = Wormhole.sendText("swift to swift", wordCount: 3, configuration: config(server)) { codeBox.set($0) }
        let code = try await codeBox.wait()
        #expect(code.words.count == 3)
        #expect(try await Wormhole.receiveText(code: code, configuration: config(server)) == "swift to swift")
        try await sent
    }

    @Test func wrongCodeSwiftSender() async throws {
        let server = try LocalMailboxServer()
        let codeBox = CodeBox()
        async let sent: Void = Wormhole.sendText("secret", configuration: config(server)) { codeBox.set($0) }
        let code = try await codeBox.wait()
        let wrong = code.nameplate + "-" + code.words[0] + "-" + (code.words[1] == "aardvark" ? "absurd" : "aardvark")
        let out = try await pythonWormhole(server, ["receive", wrong])
        do {
            try await sent
            Issue.record("the Swift sender did not notice the wrong code")
        } catch {
            #expect(error as? WormholeClientError == .wormhole(.wrongCode))
        }
        #expect(out.status == 1)
        #expect(out.stderr.contains("Key confirmation failed"), "\(out.stderr)")
        #expect(!out.stdout.contains("secret"))
    }

    @Test func wrongCodeSwiftReceiver() async throws {
        let server = try LocalMailboxServer()
        async let out = pythonWormhole(server, ["send", "--hide-progress", "--no-qr", "--text", "secret", "--code", "23-adroitness-aardvark"])
        await #expect(throws: WormholeClientError.wormhole(.wrongCode)) {
            try await Wormhole.receiveText(code: WormholeCode(parsing: "23-adroitness-absurd"), configuration: config(server))
        }
        let result = try await out
        #expect(result.status == 1)
        #expect(result.stderr.contains("Key confirmation failed"), "\(result.stderr)")
    }

    @Test func serverErrorAndBadURLsAreExplained() async throws {
        let server = try LocalMailboxServer(extraArguments: ["--signal-error=closed for maintenance"])
        await #expect(throws: WormholeClientError.wormhole(.unwelcome("closed for maintenance"))) {
            try await Wormhole.receiveText(code: WormholeCode(parsing: "3-a-b"), configuration: config(server))
        }
        let wss = try MailboxURL("wss://relay.example/v1")
        #expect(wss.tls && wss.port == 443 && wss.hostHeader == "relay.example")
        do { _ = try MailboxURL("http://relay.example/v1") } catch {
            #expect("\(error)".contains("starts with ws:// or wss://"))
        }
        let closedPort = try LocalMailboxServer.freePort()
        await #expect(throws: WormholeClientError.self) {
            try await Wormhole.receiveText(code: WormholeCode(parsing: "3-a-b"),
                                           configuration: .init(mailboxURL: "ws://127.0.0.1:\(closedPort)/v1", timeout: .seconds(20)))
        }
    }

    @Test func textOverWSS() async throws {
        let dir = Scratch("annexd-wss")
        let files = try makeTestCertificate(in: dir.path)
        let server = try LocalMailboxServer(tls: files)
        var config = config(server)
        config.tlsTrustRoots = files.cert
        let codeBox = CodeBox()
        let senderConfig = config
        async let sent: Void = Wormhole.sendText("over TLS", configuration: senderConfig) { codeBox.set($0) }
        let code = try await codeBox.wait()
        #expect(try await Wormhole.receiveText(code: code, configuration: config) == "over TLS")
        try await sent

        // Not trusted (the system's roots do not know the test certificate): a clear error.
        do {
            _ = try await Wormhole.receiveText(code: code, configuration: self.config(server))
            Issue.record("an untrusted certificate was accepted")
        } catch let e as WormholeClientError {
            guard case .tlsFailed = e else { Issue.record("not a TLS error: \(e)"); return }
            #expect(e.description.contains("TLS connection to the mailbox server at \(server.url) failed"), "\(e)")
        }
    }
}

/// A self-signed certificate for localhost and 127.0.0.1 (key.pem, cert.pem in `dir`).
func makeTestCertificate(in dir: String) throws -> (key: String, cert: String) {
    let key = dir + "/key.pem", cert = dir + "/cert.pem"
    let out = try Command.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                               "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", cert])
    guard out.status == 0 else { throw LocalMailboxServer.Failure(description: "openssl req failed: \(out.stderr)") }
    return (key, cert)
}

/// Hands the allocated code from the sender's callback to the test.
final class CodeBox: @unchecked Sendable {
    private let lock = NSLock()
    private var code: WormholeCode?
    func set(_ c: WormholeCode) { lock.withLock { code = c } }
    func wait(timeout: TimeInterval = 20) async throws -> WormholeCode {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let c = lock.withLock({ code }) { return c }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw LocalMailboxServer.Failure(description: "no wormhole code within \(Int(timeout)) s")
    }
}
