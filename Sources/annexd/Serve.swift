#if canImport(Glibc)
import Glibc
#endif
import AnnexdKit
import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle

/// `annexd` (the default): the daemon, in the foreground, systemd style.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Run the daemon in the foreground (the default).",
        discussion: """
        Serves every registered repository on its P2P listener and answers
        JSON-RPC on the control socket. SIGTERM or `annex-cli daemon stop` stops
        it gracefully: no new connections, transfers in flight end or keep their
        partial content for resume, exit status 0.
        """)

    @Option(help: "State directory (registry, onion keys). Default: $XDG_STATE_HOME/annexd.")
    var stateDir: String?

    @Option(help: "RPC socket. Default: $XDG_RUNTIME_DIR/annexd/rpc.sock.")
    var socket: String?

    @Option(help: "How to get onion services: auto, system, own or none.")
    var tor: String = "none"

    @Option(help: "SOCKS5 proxy for outgoing peer connections, HOST:PORT.")
    var socks: String = "127.0.0.1:9050"

    @Option(help: "Magic Wormhole mailbox server for pairing, ws://HOST:PORT/v1 (default: $WORMHOLE_RELAY_URL, else magic-wormhole's public one).")
    var wormholeRelayUrl: String?

    @Option(help: "Magic Wormhole transit relay for pairing, tcp:HOST:PORT (default: $WORMHOLE_TRANSIT_HELPER, else magic-wormhole's public one).")
    var wormholeTransitHelper: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(help: .hidden)
    var authFailureDelay: Double?

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        guard ["auto", "system", "own", "none"].contains(tor) else {
            throw ValidationError("--tor must be auto, system, own or none")
        }
        if tor != "none" {
            throw ValidationError("--tor \(tor) is not available in this version yet; use --tor none (onion services arrive with the tor manager)")
        }
        _ = try wormholeConfiguration()
        let parts = socks.split(separator: ":")
        guard parts.count == 2, !parts[0].isEmpty, let port = Int(parts[1]), (1...65535).contains(port) else {
            throw ValidationError("--socks must be HOST:PORT, e.g. 127.0.0.1:9050")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel)!
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "annexd")
        let parts = socks.split(separator: ":")
        var config = Daemon.Config(stateDir: stateDir ?? StateDirectory.defaultPath(),
                                   socketPath: socket ?? Daemon.Config.defaultSocketPath(),
                                   tor: tor, socksHost: String(parts[0]), socksPort: Int(parts[1])!)
        config.wormhole = try wormholeConfiguration()
        if let authFailureDelay {
            // For tests: the longest delay after a failed AUTH (default 2 s).
            config.listenerLimits.maxFailureDelay = authFailureDelay
            config.listenerLimits.baseFailureDelay = min(config.listenerLimits.baseFailureDelay, authFailureDelay)
        }
        let daemon: Daemon
        do {
            daemon = try Daemon(config: config, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("annexd: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: DaemonService(daemon: daemon))],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        daemon.requestShutdown = { Task { await group.triggerGracefulShutdown() } }
        do {
            try await group.run()
        } catch {
            FileHandle.standardError.write(Data("annexd: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// Starts serving inside the service group, so SIGTERM is already handled
/// gracefully by the time anyone can reach the daemon.
struct DaemonService: Service {
    let daemon: Daemon
    func run() async throws {
        try daemon.start()
        SystemdNotify.ready()
        try? await gracefulShutdown()
        SystemdNotify.stopping()
        daemon.stop()
    }
}

/// sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET.
enum SystemdNotify {
    static func ready() { send("READY=1\nSTATUS=serving") }
    static func stopping() { send("STOPPING=1") }

    static func send(_ message: String) {
        guard var path = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"], !path.isEmpty else { return }
        if path.hasPrefix("@") { path = "\0" + path.dropFirst() }
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return }
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        _ = message.withCString { msg in
            withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, msg, strlen(msg), 0, $0, len) }
            }
        }
    }
}
