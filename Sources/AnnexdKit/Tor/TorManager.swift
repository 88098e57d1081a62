#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import NIOCore
import Shared

/// Gets an onion service for every registered repository and keeps them up.
///
/// `--tor auto` tries system tor's control port, then annexd's own tor; `system`
/// and `own` use only that one; `none` publishes nothing. Whichever control
/// connection it gets, every repository's onion is added with
/// `ADD_ONION ED25519-V3:<annexd's key>` (so addresses never change) and mapped
/// to the repository's P2P listener socket. If the connection drops (tor
/// restarted, own tor died) the manager reconnects with growing delays, starting
/// its own tor again if it was that one, and adds every onion again.
public actor TorManager {
    public enum Mode: String, Sendable, CaseIterable {
        case auto, system, own, none
    }

    public struct Settings: Sendable {
        public var mode: Mode
        public var ownTor: OwnTor
        /// System tor's control endpoints, tried in order.
        public var systemControl: [TorControlEndpoint]
        /// For HASHEDPASSWORD control ports (`--tor-control-password-file`).
        public var controlPassword: String?
        /// Delays between reconnection attempts.
        public var backoff = Backoff()

        public init(mode: Mode, ownTor: OwnTor, systemControl: [TorControlEndpoint] = TorManager.defaultSystemControl,
                    controlPassword: String? = nil) {
            self.mode = mode
            self.ownTor = ownTor
            self.systemControl = systemControl
            self.controlPassword = controlPassword
        }
    }

    public struct Backoff: Sendable {
        public var first = 0.5
        public var max = 30.0
        /// A connection that lasted this long resets the delay to `first`.
        public var healthyAfter = 60.0
    }

    /// Where Debian's and most distributions' tor put a control socket, then the usual ControlPort.
    public static let defaultSystemControl: [TorControlEndpoint] = [
        .unix("/run/tor/control"), .unix("/var/run/tor/control"), .tcp(host: "127.0.0.1", port: 9051),
    ]

    /// One repository's onion service.
    public struct Service: Sendable {
        public var uuid: String
        public var repo: String
        public var key: OnionKey
        public var virtualPort: Int
        /// The listener's unix socket (absolute, short).
        public var socketPath: String
        public init(uuid: String, repo: String, key: OnionKey, virtualPort: Int, socketPath: String) {
            self.uuid = uuid; self.repo = repo; self.key = key; self.virtualPort = virtualPort; self.socketPath = socketPath
        }
        var serviceID: String { String(key.onionAddress.dropLast(".onion".count)) }
    }

    public enum OnionState: String, Sendable {
        /// Waiting for a control connection.
        case waiting
        /// ADD_ONION done, descriptor not yet uploaded.
        case added
        /// A descriptor was uploaded: reachable.
        case published
        case failed
    }

    private struct Entry {
        var service: Service
        var state: OnionState = .waiting
        var error: String?
        var since = Date()
    }

    /// Which tor is in use right now.
    public enum Using: String, Sendable {
        case none, system, own, connecting, unavailable
    }

    let settings: Settings
    let group: EventLoopGroup
    let logger: Logger
    let events: EventLog

    private var entries: [String: Entry] = [:]
    /// Repositories whose ADD_ONION is in flight.
    private var adding: Set<String> = []
    private var client: TorControlClient?
    private var ownProcess: BackgroundProcess?
    private var using: Using = .none
    private var controlDescription: String?
    private var socks: (host: String, port: Int)?
    /// The SOCKS port of the last tor in use, kept while it is gone.
    private var lastSocks: (host: String, port: Int)?
    private var bootstrap: (progress: Int, summary: String) = (0, "not started")
    private var lastError: String?
    private var warning: String?
    private var supervisor: Task<Void, Never>?
    private var stopping = false

    public init(settings: Settings, group: EventLoopGroup, logger: Logger, events: EventLog) {
        self.settings = settings
        self.group = group
        self.logger = logger
        self.events = events
    }

    // MARK: Public API

    public func start() {
        guard settings.mode != .none, supervisor == nil else { return }
        using = .connecting
        supervisor = Task { await self.supervise() }
    }

    public func stop() async {
        stopping = true
        supervisor?.cancel()
        if let client { await client.close() }
        client = nil
        if let p = ownProcess { await p.terminate() }
        ownProcess = nil
        _ = await supervisor?.value
    }

    /// Serves `service` on its onion now (or as soon as tor is there).
    public func add(_ service: Service) async {
        if let e = entries[service.uuid], e.service.key == service.key, e.service.socketPath == service.socketPath,
           e.service.virtualPort == service.virtualPort, e.state != .failed {
            return  // already there (or on its way)
        }
        entries[service.uuid] = Entry(service: service)
        if let client { await addOnion(service.uuid, via: client) }
    }

    public func remove(uuid: String) async {
        guard let e = entries.removeValue(forKey: uuid) else { return }
        if let client, e.state == .added || e.state == .published {
            do { try await client.delOnion(e.service.serviceID) } catch {
                logger.warning("DEL_ONION \(e.service.key.onionAddress): \(error)")
            }
        }
    }

    /// The SOCKS address of the tor in use, if any.
    public var socksAddress: (host: String, port: Int)? { socks }

    /// Where peers are dialled: the SOCKS address of the tor in use; while that tor is gone (being
    /// started again), the one it had, so a dial fails as "tor is not running" instead of reaching
    /// whatever else listens at the fallback address. Nil until a tor has been used.
    public var dialAddress: (host: String, port: Int)? { socks ?? lastSocks }

    public func status() -> TorStatus {
        TorStatus(mode: settings.mode.rawValue, using: using.rawValue, control: controlDescription,
                  socks: socks.map { "\($0.host):\($0.port)" }, pid: ownProcess.map { Int($0.pid) }, bootstrapProgress: bootstrap.progress,
                  bootstrapSummary: bootstrap.summary, warning: warning, error: lastError,
                  onions: entries.values.sorted { $0.service.repo < $1.service.repo }.map {
                      TorStatus.Onion(repo: $0.service.repo, uuid: $0.service.uuid, onion: $0.service.key.onionAddress,
                                      port: $0.service.virtualPort, state: $0.state.rawValue, error: $0.error)
                  })
    }

    // MARK: Supervision

    private func supervise() async {
        var delay = settings.backoff.first
        while !stopping && !Task.isCancelled {
            let began = Date()
            do {
                try await connectAndServe()
                if stopping { break }
                lastError = "tor's control connection closed"
            } catch {
                if stopping { break }
                lastError = "\(error)"
            }
            if let p = ownProcess {
                await p.terminate()
                ownProcess = nil
            }
            client = nil
            socks = nil
            for k in entries.keys { entries[k]?.state = .waiting }
            if Date().timeIntervalSince(began) > settings.backoff.healthyAfter { delay = settings.backoff.first }
            using = .unavailable
            logger.warning("tor: \(lastError ?? "gone"); trying again in \(delay) s")
            events.publish(TorDisconnected(error: lastError ?? "", retryIn: delay))
            try? await Task.sleep(for: .seconds(delay))
            delay = min(delay * 2, settings.backoff.max)
            if !stopping { using = .connecting }
        }
    }

    /// One life of a control connection: connect, add every onion, follow events until it closes.
    private func connectAndServe() async throws {
        let (c, kind, description) = try await connect()
        client = c
        controlDescription = description
        try await c.setEvents(["HS_DESC", "STATUS_CLIENT"])
        if kind == .own { try await c.takeOwnership() }
        socks = try await Self.socksListener(c)
        if let socks { lastSocks = socks }
        using = kind
        lastError = nil
        noteBootstrap(try? await c.bootstrapStatus())
        logger.info("tor: using \(kind.rawValue) tor at \(description); SOCKS \(socks.map { "\($0.host):\($0.port)" } ?? "none")")
        events.publish(TorConnected(kind: kind.rawValue, control: description, socks: socks.map { "\($0.host):\($0.port)" }))
        for uuid in entries.keys.sorted() { await addOnion(uuid, via: c) }
        for await event in c.events {
            handle(event)
        }
    }

    /// The first control connection that works, per the mode.
    private func connect() async throws -> (TorControlClient, Using, String) {
        var failures: [String] = []
        if settings.mode == .system || settings.mode == .auto {
            for endpoint in settings.systemControl {
                do {
                    let c = try await TorControlClient.connect(endpoint, group: group)
                    do {
                        try await c.authenticate(password: settings.controlPassword)
                        try await Self.requireSameUser(c, endpoint)
                        return (c, .system, endpoint.description)
                    } catch {
                        await c.close()
                        throw error
                    }
                } catch {
                    failures.append("\(endpoint): \(error)")
                }
            }
            if settings.mode == .system {
                throw TorManagerError(description: "no system tor control port answered (" + failures.joined(separator: "; ")
                    + "). Enable one with `annex-cli tor enable --system` (it runs annex-tor-helper as root), or use --tor own")
            }
        }
        let own = settings.ownTor
        let launched: OwnTor.Launched
        do { launched = try await own.launch() } catch {
            let tried = failures.isEmpty ? "" : " System tor: " + failures.joined(separator: "; ") + "."
            throw TorManagerError(description: "\(error).\(tried) Without tor, `annex-cli tor enable --system` can set up the system tor instead")
        }
        ownProcess = launched.process
        if let w = launched.socksWarning {
            warning = w
            logger.warning("\(w)")
        }
        let c = try await TorControlClient.connect(launched.control, group: group)
        do {
            try await c.authenticate(password: nil)
        } catch {
            await c.close()
            throw error
        }
        return (c, .own, "\(launched.control) (pid \(launched.process.pid), torrc \(own.torrcPath))")
    }

    private func addOnion(_ uuid: String, via c: TorControlClient) async {
        // Once per connection: add() and the add-everything pass after a (re)connection
        // interleave at every await, and a second ADD_ONION of a key is refused (550).
        guard let entry = entries[uuid], entry.state == .waiting || entry.state == .failed,
              !adding.contains(uuid) else { return }
        let service = entry.service
        adding.insert(uuid)
        defer { adding.remove(uuid) }
        do {
            _ = try await c.addOnion(key: service.key,
                                     ports: [try TorOnionPort(virtualPort: service.virtualPort, target: .unix(service.socketPath))])
            guard entries[uuid] != nil else {
                // Removed while tor was adding it: take it down again.
                try? await c.delOnion(service.serviceID)
                return
            }
            entries[uuid]?.state = .added
            entries[uuid]?.error = nil
            entries[uuid]?.since = Date()
        } catch {
            entries[uuid]?.state = .failed
            entries[uuid]?.error = "\(error)"
            logger.error("tor: cannot add the onion of \(service.repo): \(error)")
            events.publish(OnionFailed(repo: EventRepo(path: service.repo, uuid: uuid), onion: service.key.onionAddress, error: "\(error)"))
        }
    }

    private func handle(_ event: TorAsyncEvent) {
        switch event {
        case .hsDesc(let d) where d.action == .uploaded:
            guard let uuid = entries.first(where: { $0.value.service.serviceID == d.address })?.key,
                  entries[uuid]?.state == .added, let service = entries[uuid]?.service else { return }
            entries[uuid]?.state = .published
            let seconds = Date().timeIntervalSince(entries[uuid]?.since ?? Date())
            logger.info("tor: \(service.key.onionAddress) is published (\(service.repo))")
            events.publish(OnionReady(repo: EventRepo(path: service.repo, uuid: uuid), onion: service.key.onionAddress, seconds: seconds))
        case .bootstrap(let b):
            noteBootstrap(b)
        default:
            break
        }
    }

    private func noteBootstrap(_ b: TorBootstrapStatus?) {
        guard let b, b.progress != bootstrap.progress || b.summary != bootstrap.summary else { return }
        bootstrap = (b.progress, b.summary)
        events.publish(TorBootstrap(progress: b.progress, tag: b.tag, summary: b.summary, warning: b.warning, recommendation: b.recommendation))
    }

    /// annexd's listener sockets are private (0600 under its 0700 state directory), so a
    /// tor running as another user (Debian's system tor runs as debian-tor) could publish
    /// the onions but never connect to them: refuse it rather than publish dead onions.
    static func requireSameUser(_ c: TorControlClient, _ endpoint: TorControlEndpoint) async throws {
        guard let text = try? await c.getInfo(["process/uid"])["process/uid"], let uid = Int(text), uid >= 0,
              uid != Int(getuid()) else { return }
        let name = getpwuid(uid_t(uid)).map { String(cString: $0.pointee.pw_name) } ?? "uid \(uid)"
        throw TorManagerError(description: "the tor at \(endpoint) runs as \(name), which cannot open annexd's private listener sockets. "
            + "Use annexd's own tor (--tor own, or auto), or have system tor serve a repository in git annex enable-tor's layout "
            + "with `annex-cli tor enable --system --repo PATH`")
    }

    /// GETINFO net/listeners/socks: the first listener, `"127.0.0.1:9050"`.
    static func socksListener(_ c: TorControlClient) async throws -> (host: String, port: Int)? {
        let value = try await c.getInfo(["net/listeners/socks"])["net/listeners/socks"] ?? ""
        for word in value.split(separator: " ") {
            let w = word.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            guard let colon = w.lastIndex(of: ":"), let port = Int(w[w.index(after: colon)...]) else { continue }
            return (String(w[..<colon]), port)
        }
        return nil
    }
}

public struct TorManagerError: Error, CustomStringConvertible {
    public let description: String
}
