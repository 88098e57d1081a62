#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import Testing
@testable import AnnexdKit
import Shared

/// The mailbox connection cut while a wormhole waits for its peer: the client reconnects
/// (same side, same nameplate and mailbox) and the exchange with magic-wormhole 0.24 finishes.
/// The cut: a socat between the client and the local mailbox server, killed with the
/// connections it relays (its own process group, made by setsid).
@Suite(.serialized, .timeLimit(minutes: 3),
       .enabled(if: WormholeReference.available, "needs magic-wormhole in .venv (make test creates it)"),
       .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/socat"), "needs socat (make deps installs it)"),
       .enabled(if: NetworkIsolation.onlyLoopback, NetworkIsolation.why))
struct WormholeReconnectTests {
    /// socat relaying 127.0.0.1:`port` to the mailbox server, a child process per connection.
    final class Relay {
        let child: ChildProcess
        init(port: Int, to server: LocalMailboxServer) throws {
            child = try ChildProcess(["setsid", "socat", "TCP-LISTEN:\(port),bind=127.0.0.1,reuseaddr,fork", "TCP:127.0.0.1:\(server.port)"],
                                     quietStderr: true)
            child.closeStdin()
            let deadline = Date().addingTimeInterval(10)
            while !LocalMailboxServer.accepts(port) {
                guard Date() < deadline else { throw LocalMailboxServer.Failure(description: "socat did not listen on \(port)") }
                usleep(20_000)
            }
        }
        /// Cuts every relayed connection: SIGKILL to socat's process group (its pid), then reaps it.
        func cut() {
            kill(-child.pid, SIGKILL)
            _ = child.wait()
        }
        deinit { cut() }
    }

    @Test func senderReconnectsAfterTheMailboxConnectionIsCut() async throws {
        let server = try LocalMailboxServer()
        let port = try LocalMailboxServer.freePort()
        var relay = try Relay(port: port, to: server)
        let trace = Mutex<[String]>([])
        var config = Wormhole.Configuration(mailboxURL: "ws://127.0.0.1:\(port)/v1", timeout: .seconds(60))
        config.trace = { line in trace.withLock { $0.append(line) } }
        let codeBox = CodeBox()
        let senderConfig = config
        async let sent: Void = Wormhole.sendText("survives a cut", configuration: senderConfig) { codeBox.set($0) }
        let code = try await codeBox.wait()
        // Wait (bounded) until the pake is in the mailbox (its echo came back), then cut.
        let deadline = Date().addingTimeInterval(10)
        while !trace.withLock({ $0.contains { $0.hasPrefix("<- ") && $0.contains("\"phase\":\"pake\"") } }) && Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        relay.cut()
        try await Task.sleep(for: .milliseconds(100))
        relay = try Relay(port: port, to: server)
        // The receiver talks to the server directly.
        let out = try await pythonWormhole(server, ["receive", code.text])
        try await sent
        #expect(out.status == 0, "wormhole receive failed: \(out.stderr)")
        #expect(out.stdout.trimmingCharacters(in: .newlines) == "survives a cut")
        let lines = trace.withLock { $0 }
        #expect(lines.contains { $0.contains("dropped; reconnecting") }, "the connection was not cut:\n\(lines.joined(separator: "\n"))")
        withExtendedLifetime(relay) {}
    }
}
