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

    @Option(help: ArgumentHelp("How to get onion services: auto, system, own or none.", discussion: """
        auto tries system tor's control port, then starts annexd's own tor. system uses only \
        system tor's control port (--tor-control); own only annexd's own tor; none publishes no onion.
        """))
    var tor: String = "auto"

    @Option(help: ArgumentHelp("SOCKS5 proxy for outgoing peer connections, HOST:PORT (or auto).", discussion: """
        Default: the SOCKS port of the tor in use, else 127.0.0.1:9050. With annexd's own tor this is also \
        where that tor listens (default 127.0.0.1:9050 when free); auto lets it pick a free port.
        """))
    var socks: String?

    @Option(help: "System tor's control endpoint: a unix socket path, unix:PATH or HOST:PORT. Default: /run/tor/control, then 127.0.0.1:9051.")
    var torControl: String?

    @Option(help: "A file holding the password of a control port that uses HashedControlPassword.")
    var torControlPasswordFile: String?

    @Option(help: "The tor program annexd runs as its own tor.")
    var torBinary: String = "tor"

    @Option(help: "A file of torrc lines appended to the torrc of annexd's own tor.")
    var torExtraConfig: String?

    @Option(help: "The system torrc, read (never written) to find repositories set up by `git annex enable-tor`.")
    var systemTorrc: String = "/etc/tor/torrc"

    @Option(help: "annex-tor-helper, for `annex-cli tor enable --system`. Default: PREFIX/libexec/annex-tor-helper.")
    var torHelper: String?

    @Option(parsing: .singleValue, help: .hidden)
    var torHelperArg: [String] = []

    @Option(help: "Magic Wormhole mailbox server for pairing, ws://HOST:PORT/v1 (default: $WORMHOLE_RELAY_URL, else magic-wormhole's public one).")
    var wormholeRelayUrl: String?

    @Option(help: "Magic Wormhole transit relay for pairing, tcp:HOST:PORT (default: $WORMHOLE_TRANSIT_HELPER, else magic-wormhole's public one).")
    var wormholeTransitHelper: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(help: "Unfinished transfers that may wait at once; transfer.start past it is refused (queue_full).")
    var maxQueuedTransfers: Int = 100_000

    @Option(help: .hidden)
    var authFailureDelay: Double?

    @Option(help: "Seconds git-annex queries (find, whereis) may take before they are killed and the request fails with annex_timeout.")
    var plumbingTimeout: Double = 600

    func validate() throws {
        guard maxQueuedTransfers > 0 else { throw ValidationError("--max-queued-transfers must be at least 1") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        guard ["auto", "system", "own", "none"].contains(tor) else {
            throw ValidationError("--tor must be auto, system, own or none")
        }
        if let socks, socks != "auto", Self.hostPort(socks) == nil {
            throw ValidationError("--socks must be HOST:PORT (e.g. 127.0.0.1:9050) or auto")
        }
        _ = try wormholeConfiguration()
        guard plumbingTimeout > 0 else { throw ValidationError("--plumbing-timeout must be more than 0 seconds") }
        if let torControl, Self.endpoint(torControl) == nil {
            throw ValidationError("--tor-control must be an absolute unix socket path, unix:PATH or HOST:PORT")
        }
        for (flag, path) in [("--tor-extra-config", torExtraConfig), ("--tor-control-password-file", torControlPasswordFile)] {
            if let path, !FileManager.default.isReadableFile(atPath: path) {
                throw ValidationError("\(flag) \(path): no such readable file")
            }
        }
    }

    static func hostPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), colon != text.startIndex,
              let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        return (String(text[..<colon]), port)
    }

    static func endpoint(_ text: String) -> TorControlEndpoint? {
        if text.hasPrefix("unix:") { return text.dropFirst(5).hasPrefix("/") ? .unix(String(text.dropFirst(5))) : nil }
        if text.hasPrefix("/") { return .unix(text) }
        return hostPort(text).map { .tcp(host: $0.host, port: $0.port) }
    }

    func torSettings(stateDir: String) throws -> TorManager.Settings {
        let socksChoice: OwnTor.SocksChoice
        switch socks {
        case nil: socksChoice = .preferDefault
        case "auto"?: socksChoice = .any
        case let s?: let hp = Self.hostPort(s)!; socksChoice = .fixed(host: hp.host, port: hp.port)
        }
        let own = OwnTor(torBinary: torBinary, directory: stateDir + "/tor", socks: socksChoice,
                         extraConfigPath: torExtraConfig.map { Posix.realpath($0) ?? $0 })
        var settings = TorManager.Settings(mode: TorManager.Mode(rawValue: tor)!, ownTor: own)
        if let torControl { settings.systemControl = [Self.endpoint(torControl)!] }
        if let file = torControlPasswordFile {
            settings.controlPassword = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .newlines)
        }
        return settings
    }

    func run() async throws {
        Posix.tuneMalloc(arenas: 2, mmapThreshold: 128 << 10)
        Posix.raiseFileLimit()
        let level = Logger.Level(rawValue: logLevel)!
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "annexd")
        let dir = stateDir ?? StateDirectory.defaultPath()
        var config = Daemon.Config(stateDir: dir, socketPath: socket ?? Daemon.Config.defaultSocketPath(), tor: tor)
        config.systemTorrc = systemTorrc
        config.torHelper = TorHelperRunner(helperPath: torHelper, extraArguments: torHelperArg)
        if let socks, let hp = Self.hostPort(socks) {
            config.socksHost = hp.host
            config.socksPort = hp.port
            config.socksExplicit = true
        }
        do {
            config.torSettings = try torSettings(stateDir: dir.hasPrefix("/") ? dir : FileManager.default.currentDirectoryPath + "/" + dir)
        } catch {
            FileHandle.standardError.write(Data("annexd: \(error)\n".utf8))
            throw ExitCode(1)
        }
        config.wormhole = try wormholeConfiguration()
        config.maxQueuedTransfers = maxQueuedTransfers
        if let authFailureDelay {
            // For tests: the longest delay after a failed AUTH (default 2 s).
            config.listenerLimits.maxFailureDelay = authFailureDelay
            config.listenerLimits.baseFailureDelay = min(config.listenerLimits.baseFailureDelay, authFailureDelay)
        }
        Command.plumbingTimeout = plumbingTimeout
        let daemon: Daemon
        do {
            daemon = try Daemon(config: config, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("annexd: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let group = ServiceGroup(configuration: .init(
            services: daemon.lifecycle(onReady: { SystemdNotify.ready(); Self.sayReady(daemon) },
                                       onStopping: SystemdNotify.stopping).map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        daemon.requestShutdown = { Task { await group.triggerGracefulShutdown() } }
        do {
            try await group.run()
        } catch {
            FileHandle.standardError.write(Data("annexd: \(error)\n".utf8))
            await daemon.shutdownEventLoops()
            throw ExitCode(1)
        }
        await daemon.shutdownEventLoops()
    }
}

extension Serve {
    /// The first-run hint (ReadyHint) on stderr, once the socket answers.
    static func sayReady(_ daemon: Daemon) {
        guard let hint = ReadyHint.text(repositories: daemon.repos.registry.all.count, socket: daemon.config.socketPath,
                                        cliSocket: ReadyHint.cliSocket(), logs: .current()) else { return }
        FileHandle.standardError.write(Data(hint.utf8))
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
