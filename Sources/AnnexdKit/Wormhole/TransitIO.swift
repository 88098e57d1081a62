import NIOCore
import NIOPosix
import NIOSOCKS
import Shared
import Synchronization

/// Transit over TCP with SwiftNIO (magic-wormhole's `transit.py`): a listener for direct
/// connections, outgoing attempts to the peer's direct hints and to relays, and the race
/// between them. Every connection runs `TransitHandshake`; the first one through wins
/// (the file sender decides with `go\n`), the others are dropped.

/// A SOCKS5 proxy (tor's SOCKS port) that every outgoing connection goes through.
public struct SOCKSProxy: Sendable, Equatable {
    public var host: String
    public var port: Int
    public init(host: String = "127.0.0.1", port: Int = 9050) {
        self.host = host
        self.port = port
    }
}

/// How one Transit exchange connects.
public struct TransitOptions: Sendable {
    /// The relay we use and advertise (`--transit-helper`); nil for none.
    public var relay: TransitEndpoint?
    /// Listen for direct connections and advertise them (`false` = magic-wormhole's `--no-listen`).
    public var listen: Bool
    /// Addresses to advertise for the listener; nil = this machine's IPv4 addresses (loopback
    /// only when there is no other), as magic-wormhole does.
    public var advertisedAddresses: [String]?
    /// The port to advertise instead of the listener's own; nil = the listener's. Only tests
    /// set it (a direct hint to a closed loopback port, which leads nowhere).
    public var advertisedPort: Int?
    /// Every outgoing connection goes through this SOCKS5 proxy (then nothing listens).
    public var socks: SOCKSProxy?
    /// How long relays wait when a direct hint exists (magic-wormhole's RELAY_DELAY).
    public var relayDelay: Duration
    /// Gives up when no connection got through within this time.
    public var timeout: Duration

    public init(relay: TransitEndpoint? = nil, listen: Bool = true, advertisedAddresses: [String]? = nil,
                advertisedPort: Int? = nil, socks: SOCKSProxy? = nil, relayDelay: Duration = .seconds(2),
                timeout: Duration = .seconds(120)) {
        self.relay = relay
        self.listen = listen
        self.advertisedAddresses = advertisedAddresses
        self.advertisedPort = advertisedPort
        self.socks = socks
        self.relayDelay = relayDelay
        self.timeout = timeout
    }
}

public enum TransitIOError: Error, Equatable, Sendable, CustomStringConvertible {
    case noConnection(seconds: Int, attempts: [String])
    case listenFailed(String)
    case transfer(String)

    public var description: String {
        switch self {
        case .noConnection(let s, let attempts):
            "no transit connection to the peer within \(s) s"
                + (attempts.isEmpty ? " (the peer offered no usable hints and no relay is configured)" : ": " + attempts.joined(separator: "; "))
                + ". Check that the transit relay (WORMHOLE_TRANSIT_HELPER, --wormhole-transit-helper) is reachable from both sides"
        case .listenFailed(let why): "cannot listen for direct transit connections: \(why)"
        case .transfer(let why): why
        }
    }
}

/// The connection that won the race: records after the negotiation.
public final class TransitConnection: Sendable {
    let channel: Channel
    /// Bytes after the negotiation (the left-over bytes first).
    let inbound: AsyncThrowingStream<[UInt8], Error>
    /// "direct to 127.0.0.1:4567", "relay 127.0.0.1:4001", "direct from 127.0.0.1:51234".
    public let route: String

    init(channel: Channel, inbound: AsyncThrowingStream<[UInt8], Error>, route: String) {
        self.channel = channel
        self.inbound = inbound
        self.route = route
    }

    func write(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
    }

    func close() { channel.close(promise: nil) }
}

/// One Transit exchange's race: the listener's inbound connections and the outgoing
/// attempts all report here; `winner()` returns the first that got through.
final class TransitRace: Sendable {
    let role: TransitRole
    let side = TransitKeys.randomSide()
    private struct State {
        var keys: TransitKeys?
        var waitingForKeys: [@Sendable (TransitKeys) -> Void] = []
        var claimed = false
        var winner: TransitConnection?
        var waiter: CheckedContinuation<TransitConnection, Error>?
        var failures: [String] = []
        var channels: [ObjectIdentifier: Channel] = [:]
        var finished = false
    }
    private let state = Mutex(State())

    init(role: TransitRole) { self.role = role }

    /// The transit key is known: negotiation starts on every connection.
    func start(_ keys: TransitKeys) {
        let callbacks = state.withLock { s -> [@Sendable (TransitKeys) -> Void] in
            s.keys = keys
            defer { s.waitingForKeys = [] }
            return s.waitingForKeys
        }
        for c in callbacks { c(keys) }
    }

    /// Calls `body` with the keys now or once they are known.
    func whenStarted(_ body: @escaping @Sendable (TransitKeys) -> Void) {
        let keys = state.withLock { s -> TransitKeys? in
            if s.keys == nil { s.waitingForKeys.append(body) }
            return s.keys
        }
        if let keys { body(keys) }
    }

    /// Sender: may this connection be the one? (Only the first asks successfully.)
    func claim() -> Bool {
        state.withLock { s in
            guard !s.claimed, !s.finished else { return false }
            s.claimed = true
            return true
        }
    }

    func track(_ channel: Channel) -> Bool {
        state.withLock { s in
            guard !s.finished else { return false }
            s.channels[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    func won(_ connection: TransitConnection) {
        let (accepted, waiter) = state.withLock { s -> (Bool, CheckedContinuation<TransitConnection, Error>?) in
            s.channels[ObjectIdentifier(connection.channel)] = nil
            guard !s.finished, s.winner == nil else { return (false, nil) }
            s.winner = connection
            defer { s.waiter = nil }
            return (true, s.waiter)
        }
        if !accepted { connection.close() }
        waiter?.resume(returning: connection)
    }

    func failed(_ what: String, channel: Channel?) {
        state.withLock { s in
            s.failures.append(what)
            if let channel { s.channels[ObjectIdentifier(channel)] = nil }
        }
    }

    /// Waits for the first connection through; closes all the others.
    func winner(timeout: Duration) async throws -> TransitConnection {
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            self?.giveUp(after: timeout)
        }
        defer { timer.cancel() }
        return try await withTaskCancellationHandler {
            let connection = try await withCheckedThrowingContinuation { (c: CheckedContinuation<TransitConnection, Error>) in
                let ready = state.withLock { s -> Result<TransitConnection, Error>? in
                    if let w = s.winner { return .success(w) }
                    if s.finished { return .failure(CancellationError()) }
                    s.waiter = c
                    return nil
                }
                if let ready { c.resume(with: ready) }
            }
            finish()
            return connection
        } onCancel: {
            finish()
            let waiter = state.withLock { s in defer { s.waiter = nil }; return s.waiter }
            waiter?.resume(throwing: CancellationError())
        }
    }

    private func giveUp(after timeout: Duration) {
        let (waiter, failures) = state.withLock { s in
            defer { s.waiter = nil }
            return (s.winner == nil ? s.waiter : nil, s.failures)
        }
        finish()
        waiter?.resume(throwing: TransitIOError.noConnection(seconds: Int(timeout.components.seconds), attempts: failures))
    }

    /// No more connections: close every loser.
    func finish() {
        let losers = state.withLock { s in
            s.finished = true
            defer { s.channels = [:] }
            return Array(s.channels.values)
        }
        for c in losers { c.close(promise: nil) }
    }
}

/// Runs one connection's negotiation (`TransitHandshake`) on its event loop; after a win,
/// passes the bytes on to the connection's inbound stream.
final class TransitNegotiationHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let race: TransitRace
    private let route: String
    /// The relay's side token when this connection goes to a relay.
    private let relaySide: String?
    /// With SOCKS, negotiation starts when the proxy says the tunnel is up.
    private let waitForProxy: Bool
    private var handshake: TransitHandshake?
    private var context: ChannelHandlerContext?
    private var pending: [UInt8] = []
    private var continuation: AsyncThrowingStream<[UInt8], Error>.Continuation?
    private var done = false
    private var timeout: Scheduled<Void>?

    init(race: TransitRace, route: String, relaySide: String?, waitForProxy: Bool) {
        self.race = race
        self.route = route
        self.relaySide = relaySide
        self.waitForProxy = waitForProxy
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        guard race.track(context.channel) else {
            context.close(promise: nil)
            return
        }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timeout = context.eventLoop.scheduleTask(in: .seconds(60)) { bound.value.fail("no handshake within 60 s") }
        if !waitForProxy { waitForKeys(context) }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if waitForProxy, event is SOCKSProxyEstablishedEvent { waitForKeys(context) }
        context.fireUserInboundEventTriggered(event)
    }

    private func waitForKeys(_ context: ChannelHandlerContext) {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        race.whenStarted { keys in
            bound.eventLoop.execute { bound.value.begin(keys) }
        }
    }

    private func begin(_ keys: TransitKeys) {
        guard let context, !done, handshake == nil else { return }
        var h = TransitHandshake(role: race.role, keys: keys)
        write(h.start(relaySide: relaySide))
        handshake = h
        if !pending.isEmpty {
            let bytes = pending
            pending = []
            consume(bytes, context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = Array(unwrapInboundIn(data).readableBytesView)
        if let continuation {
            continuation.yield(bytes)
        } else if handshake == nil {
            pending += bytes
        } else {
            consume(bytes, context)
        }
    }

    private func consume(_ bytes: [UInt8], _ context: ChannelHandlerContext) {
        guard var h = handshake, !done else { return }
        write(h.received(bytes))
        if h.state == .peerVerified {
            write(h.choose(race.claim()))
        }
        handshake = h
        switch h.state {
        case .ready: win(leftover: h.leftover, context)
        case .failed(let e):
            if e == .notChosen && race.role == .sender {
                fail("another connection was faster")
            } else {
                fail("\(e)")
            }
        default: break
        }
    }

    private func win(leftover: [UInt8], _ context: ChannelHandlerContext) {
        done = true
        timeout?.cancel()
        let (stream, continuation) = AsyncThrowingStream<[UInt8], Error>.makeStream()
        if !leftover.isEmpty { continuation.yield(leftover) }
        self.continuation = continuation
        race.won(TransitConnection(channel: context.channel, inbound: stream, route: route))
    }

    private func fail(_ why: String) {
        guard !done else { return }
        done = true
        timeout?.cancel()
        race.failed("\(route): \(why)", channel: context?.channel)
        context?.close(promise: nil)
    }

    private func write(_ bytes: [UInt8]) {
        guard let context, !bytes.isEmpty else { return }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: bytes)), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let continuation {
            continuation.finish()
        } else {
            fail("the connection closed during the handshake")
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let continuation {
            continuation.finish(throwing: error)
            self.continuation = nil
        } else {
            fail("\(error)")
        }
        context.close(promise: nil)
    }
}

/// A TCP listener for the peer's direct connections; accepted connections negotiate once
/// the race starts.
final class TransitListener: Sendable {
    let channel: Channel
    let port: Int

    private init(channel: Channel, port: Int) {
        self.channel = channel
        self.port = port
    }

    static func bind(race: TransitRace, group: EventLoopGroup) async throws -> TransitListener {
        let channel: Channel
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { child in
                    child.eventLoop.makeCompletedFuture {
                        let route = "direct from \(child.remoteAddress.map { "\($0)" } ?? "?")"
                        try child.pipeline.syncOperations.addHandler(
                            TransitNegotiationHandler(race: race, route: route, relaySide: nil, waitForProxy: false))
                    }
                }
                .bind(host: "0.0.0.0", port: 0).get()
        } catch {
            throw TransitIOError.listenFailed("\(error)")
        }
        return TransitListener(channel: channel, port: channel.localAddress?.port ?? 0)
    }

    /// One hint per address to advertise (at `port`, else the listener's).
    func hints(addresses: [String]?, port: Int? = nil) -> [TransitEndpoint] {
        (addresses ?? Self.localAddresses()).map { TransitEndpoint(host: $0, port: port ?? self.port) }
    }

    /// This machine's IPv4 addresses, without 127.0.0.1 unless it is the only one
    /// (magic-wormhole's `ipaddrs.find_addresses` filter).
    static func localAddresses() -> [String] {
        let all = ((try? System.enumerateDevices()) ?? []).compactMap { device -> String? in
            guard let address = device.address, case .v4 = address else { return nil }
            return address.ipAddress
        }
        var seen = Set<String>()
        let unique = all.filter { seen.insert($0).inserted }
        let others = unique.filter { !$0.hasPrefix("127.") }
        return others.isEmpty ? ["127.0.0.1"] : others
    }

    func close() { channel.close(promise: nil) }
}

/// Outgoing attempts: every direct hint at once, relays after a delay when a direct hint exists.
enum TransitConnector {
    static func connectAll(race: TransitRace, peer: TransitHints, options: TransitOptions, group: EventLoopGroup) {
        var relays: [TransitEndpoint] = []
        for r in (options.relay.map { [$0] } ?? []) + peer.relays where !relays.contains(r) { relays.append(r) }
        for hint in peer.direct {
            connect(to: hint, race: race, route: "direct to \(hint)", relaySide: nil, socks: options.socks, group: group)
        }
        let delay = peer.direct.isEmpty ? Duration.zero : options.relayDelay
        for relay in relays {
            Task {
                if delay > .zero { try? await Task.sleep(for: delay) }
                connect(to: relay, race: race, route: "relay \(relay)", relaySide: race.side, socks: options.socks, group: group)
            }
        }
    }

    private static func connect(to endpoint: TransitEndpoint, race: TransitRace, route: String, relaySide: String?,
                                socks: SOCKSProxy?, group: EventLoopGroup) {
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.seconds(20))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if socks != nil {
                        try channel.pipeline.syncOperations.addHandler(
                            SOCKSClientHandler(targetAddress: .domain(endpoint.host, port: endpoint.port)))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        TransitNegotiationHandler(race: race, route: route, relaySide: relaySide, waitForProxy: socks != nil))
                }
            }
        let future = socks.map { bootstrap.connect(host: $0.host, port: $0.port) }
            ?? bootstrap.connect(host: endpoint.host, port: endpoint.port)
        future.whenFailure { error in race.failed("\(route): \(error)", channel: nil) }
    }
}
