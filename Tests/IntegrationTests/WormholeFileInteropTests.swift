#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
import Shared

/// A local `twist transitrelay` on 127.0.0.1 and a free port, stopped (SIGTERM, by pid) when
/// the value goes away.
final class LocalTransitRelay: @unchecked Sendable {  // immutable after init
    let scratch = Scratch("annexd-transit")
    let port: Int
    let pid: Int32
    private let child: ChildProcess
    /// `tcp:127.0.0.1:PORT`, for `--transit-helper` and WORMHOLE_TRANSIT_HELPER.
    var helper: String { "tcp:127.0.0.1:\(port)" }
    var endpoint: TransitEndpoint { TransitEndpoint(host: "127.0.0.1", port: port) }

    init(namespace: String? = nil) throws {
        port = try LocalMailboxServer.freePort()
        let log = scratch.path + "/relay.log"
        let inNamespace = namespace.map { ["ip", "netns", "exec", $0] } ?? []
        child = try ChildProcess(inNamespace + ["sh", "-c", "exec '\(WormholeReference.twist)' transitrelay --port=tcp:\(port):interface=127.0.0.1 >'\(log)' 2>&1"],
                                 cwd: scratch.path)
        child.closeStdin()
        pid = child.pid
        guard LocalMailboxServer.waitListening(port, namespace: namespace) else {
            kill(pid, SIGTERM)
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw LocalMailboxServer.Failure(description: "the transit relay did not listen on 127.0.0.1:\(port) within 20 s:\n\(text)")
        }
    }

    deinit { kill(pid, SIGTERM) }
}

/// Both local servers of one test.
struct WormholeServers {
    let mailbox: LocalMailboxServer
    let relay: LocalTransitRelay

    /// `namespace`: both run there (as root with OnionNetwork, whose namespace has only lo).
    init(namespace: String? = nil) throws {
        mailbox = try LocalMailboxServer(namespace: namespace)
        relay = try LocalTransitRelay(namespace: namespace)
    }

    /// annexd's flags for these servers.
    var daemonArguments: [String] { ["--wormhole-relay-url", mailbox.url, "--wormhole-transit-helper", relay.helper] }
    /// What the Python CLI (and git-annex, which runs it) reads.
    var environment: [String: String] { ["WORMHOLE_RELAY_URL": mailbox.url, "WORMHOLE_TRANSIT_HELPER": relay.helper] }

    /// Our side: `listen: false` is magic-wormhole's `--no-listen` (relay only).
    func configuration(listen: Bool = true, appID: String = Wormhole.defaultAppID) -> Wormhole.Configuration {
        Wormhole.Configuration(mailboxURL: mailbox.url, appID: appID, timeout: .seconds(60),
                               transit: TransitOptions(relay: relay.endpoint, listen: listen))
    }

    /// The Python CLI's global options for these servers.
    var cliOptions: [String] { ["--relay-url", mailbox.url, "--transit-helper", relay.helper] }
}

/// Both sides, ours and the Python CLI, advertise direct hints for every address this
/// namespace has, so the suite runs only where that is lo alone.
@Suite(.serialized, .timeLimit(minutes: 5),
       .enabled(if: WormholeReference.available, "needs magic-wormhole in .venv (make test creates it)"),
       .enabled(if: NetworkIsolation.onlyLoopback, NetworkIsolation.why))
struct WormholeFileInteropTests {
    static func payload(_ count: Int) -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &g) }
    }

    func cli(_ servers: WormholeServers, _ args: [String]) async throws -> Command.Output {
        try await runOffPool(["timeout", "60", WormholeReference.wormhole] + servers.cliOptions + args)
    }

    func swiftSends(listen: Bool, size: Int, expectRoute: String) async throws {
        let servers = try WormholeServers()
        let bytes = Self.payload(size)
        let codeBox = CodeBox()
        async let route = Wormhole.sendFile(bytes, filename: "from-swift.bin", configuration: servers.configuration(listen: listen)) {
            codeBox.set($0)
        }
        let code = try await codeBox.wait()
        let out = servers.mailbox.scratch.path + "/received.bin"
        let noListen = listen ? [] : ["--no-listen"]
        let result = try await cli(servers, ["receive", "--accept-file", "--hide-progress", "-o", out] + noListen + [code.text])
        let used = try await route
        #expect(result.status == 0, "wormhole receive failed: \(result.stderr)")
        #expect(FileManager.default.contents(atPath: out) == Data(bytes))
        #expect(used.hasPrefix(expectRoute) && used.contains("127.0.0.1"), "the data went \(used)")
    }

    func pythonSends(listen: Bool, size: Int, expectRoute: String) async throws {
        let servers = try WormholeServers()
        let bytes = Self.payload(size)
        let file = servers.mailbox.scratch.path + "/from-python.bin"
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let code = try WormholeCode(parsing: "41-adroitness-aardvark")
        let noListen = listen ? [] : ["--no-listen"]
        async let sent = cli(servers, ["send", "--hide-progress", "--no-qr", "--code", code.text] + noListen + [file])
        let received = try await Wormhole.receiveFile(code: code, configuration: servers.configuration(listen: listen))
        let result = try await sent
        #expect(result.status == 0, "wormhole send failed: \(result.stderr)")
        #expect(received.filename == "from-python.bin")
        #expect(received.bytes == bytes)
        #expect(received.route.hasPrefix(expectRoute) && received.route.contains("127.0.0.1"), "the data went \(received.route)")
    }

    /// What both sides advertise here (magic-wormhole's rule: loopback only when there is no other).
    @Test func directHintsAreLoopbackOnly() {
        #expect(TransitListener.localAddresses() == ["127.0.0.1"])
    }

    @Test func swiftSendsFilePythonReceivesDirect() async throws {
        try await swiftSends(listen: true, size: 300_001, expectRoute: "direct")
    }

    @Test func swiftSendsFilePythonReceivesRelayOnly() async throws {
        try await swiftSends(listen: false, size: 70_000, expectRoute: "relay")
    }

    @Test func pythonSendsFileSwiftReceivesDirect() async throws {
        try await pythonSends(listen: true, size: 300_001, expectRoute: "direct")
    }

    @Test func pythonSendsFileSwiftReceivesRelayOnly() async throws {
        try await pythonSends(listen: false, size: 70_000, expectRoute: "relay")
    }

    /// A direct hint that leads nowhere (a closed loopback port): the relay is used, 2 s later
    /// (magic-wormhole's RELAY_DELAY).
    @Test func deadDirectHintFallsBackToTheRelayAfterTheDelay() async throws {
        let servers = try WormholeServers()
        let dead = try ClosedLoopbackPort()
        var config = servers.configuration(listen: true)
        config.transit.advertisedAddresses = ["127.0.0.1"]
        config.transit.advertisedPort = dead.port
        let bytes = Self.payload(5000)
        let codeBox = CodeBox()
        let senderConfig = config
        async let route = Wormhole.sendFile(bytes, filename: "dead-hint.bin", configuration: senderConfig) { codeBox.set($0) }
        let code = try await codeBox.wait()
        let out = servers.mailbox.scratch.path + "/dead-hint.bin"
        let started = Date()
        let result = try await cli(servers, ["receive", "--accept-file", "--hide-progress", "--no-listen", "-o", out, code.text])
        let took = Date().timeIntervalSince(started)
        #expect(result.status == 0, "wormhole receive failed: \(result.stderr)")
        #expect(FileManager.default.contents(atPath: out) == Data(bytes))
        #expect(try await route.hasPrefix("relay"))
        #expect(took >= 2, "the relay was used after \(took) s, before RELAY_DELAY")
    }

    /// With a SOCKS proxy (tor's port with `--tor`), the mailbox and every transit connection
    /// go through it, and nothing listens.
    @Test func throughASOCKSProxy() async throws {
        let servers = try WormholeServers()
        let port = try LocalMailboxServer.freePort()
        let log = servers.mailbox.scratch.path + "/socks.log"
        let script = TestEnvironment.packageRoot + "/Tests/IntegrationTests/Support/socks-standin.py"
        let proxy = try ChildProcess(["sh", "-c", "exec python3 '\(script)' 127.0.0.1 \(port) --tcp >'\(log)' 2>&1"])
        defer { kill(proxy.pid, SIGTERM); proxy.closeStdin(); proxy.wait() }
        #expect(LocalMailboxServer.waitListening(port, namespace: nil))
        var config = servers.configuration(listen: true)
        config.socks = SOCKSProxy(host: "127.0.0.1", port: port)
        let bytes = Self.payload(40_000)
        let codeBox = CodeBox()
        let senderConfig = config
        async let route = Wormhole.sendFile(bytes, filename: "via-socks", configuration: senderConfig) { codeBox.set($0) }
        let code = try await codeBox.wait()
        let file = try await Wormhole.receiveFile(code: code, configuration: config)
        #expect(file.bytes == bytes)
        #expect(try await route.hasPrefix("relay") && file.route.hasPrefix("relay"))
        let seen = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(seen.components(separatedBy: "CONNECT 127.0.0.1:\(servers.mailbox.port)").count - 1 == 2, "\(seen)")
        #expect(seen.components(separatedBy: "CONNECT 127.0.0.1:\(servers.relay.port)").count - 1 >= 2, "\(seen)")
    }

    @Test func textBothWaysWithTheRelayRunning() async throws {
        let servers = try WormholeServers()
        let codeBox = CodeBox()
        async let sent: Void = Wormhole.sendText("text next to files", configuration: servers.configuration()) { codeBox.set($0) }
        let code = try await codeBox.wait()
        let out = try await cli(servers, ["receive", code.text])
        try await sent
        #expect(out.stdout.trimmingCharacters(in: .newlines) == "text next to files")
        let back = try WormholeCode(parsing: "42-adroitness-aardvark")
        async let pySent = cli(servers, ["send", "--hide-progress", "--no-qr", "--code", back.text, "--text", "and back"])
        #expect(try await Wormhole.receiveText(code: back, configuration: servers.configuration()) == "and back")
        #expect(try await pySent.status == 0)
    }

    @Test func swiftToSwiftEmptyFileRelayOnly() async throws {
        let servers = try WormholeServers()
        let codeBox = CodeBox()
        async let route = Wormhole.sendFile([], filename: "empty", configuration: servers.configuration(listen: false)) { codeBox.set($0) }
        let code = try await codeBox.wait()
        let file = try await Wormhole.receiveFile(code: code, configuration: servers.configuration(listen: false))
        #expect(file.bytes.isEmpty && file.filename == "empty")
        #expect(try await route.hasPrefix("relay"))
        #expect(file.route.hasPrefix("relay"))
    }

    @Test func tooLargeOfferIsRefusedOnBothSides() async throws {
        let servers = try WormholeServers()
        let codeBox = CodeBox()
        async let sent = Wormhole.sendFile(Self.payload(2000), filename: "big", configuration: servers.configuration()) { codeBox.set($0) }
        let code = try await codeBox.wait()
        await #expect(throws: WormholeClientError.self) {
            try await Wormhole.receiveFile(code: code, configuration: servers.configuration(), maxSize: 1000)
        }
        do {
            _ = try await sent
            Issue.record("the sender did not hear of the refusal")
        } catch {
            #expect("\(error)".contains("refused the file"), "\(error)")
        }
    }

    @Test func noRelayAndNoListenerTimesOutWithAnExplanation() async throws {
        let servers = try WormholeServers()
        var config = servers.configuration(listen: false)
        config.transit.relay = nil
        config.transit.timeout = .seconds(2)
        let codeBox = CodeBox()
        let senderConfig = config
        async let sent = Wormhole.sendFile([1, 2, 3], filename: "x", configuration: senderConfig) { codeBox.set($0) }
        let code = try await codeBox.wait()
        do {
            _ = try await Wormhole.receiveFile(code: code, configuration: config)
            Issue.record("received without any connection")
        } catch {
            #expect("\(error)".contains("no transit connection"), "\(error)")
        }
        do {
            _ = try await sent
            Issue.record("the sender sent without any connection")
        } catch {}
    }
}
