#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import Shared
import Synchronization

/// Where tor's control port is: a ControlSocket path or a loopback ControlPort.
public enum TorControlEndpoint: Sendable, Equatable, CustomStringConvertible {
    case unix(String)
    case tcp(host: String, port: Int)

    public var description: String {
        switch self {
        case .unix(let path): return path
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }
}

/// An async client for tor's control protocol: a thin NIO shell around the pure codec in
/// Shared/Tor/Control (`TorControlReplyParser`, `TorControlCommand`, the reply parsers).
///
/// ```
/// static func connect(_ endpoint: TorControlEndpoint, group: EventLoopGroup,
///                     connectTimeout: TimeAmount = .seconds(10)) async throws -> TorControlClient
/// func authenticate(password: String? = nil, cookiePath: String? = nil,
///                   method: TorAuthMethod? = nil) async throws -> TorAuthMethod
/// func protocolInfo() async throws -> TorProtocolInfo
/// func getInfo(_ keys: [String]) async throws -> [String: String]
/// func getConf(_ keys: [String]) async throws -> [(key: String, value: String?)]
/// func setConf(_ settings: [(key: String, value: String?)]) async throws
/// func resetConf(_ keys: [String]) async throws
/// func setEvents(_ names: [String]) async throws
/// func bootstrapStatus() async throws -> TorBootstrapStatus
/// func addOnion(key: OnionKey, ports: [TorOnionPort], detach: Bool = false) async throws -> String
/// func addOnion(key: OnionKey, ports: [TorOnionPort], flags: [TorOnionFlag], maxStreams: Int? = nil) async throws -> String
/// func delOnion(_ serviceID: String) async throws
/// func takeOwnership() async throws
/// func signal(_ signal: TorSignal) async throws
/// func send(_ command: TorControlCommand) async throws -> TorControlReply
/// let events: AsyncStream<TorAsyncEvent>
/// var isOpen: Bool
/// var closeFuture: EventLoopFuture<Void>
/// func waitUntilClosed() async
/// func close() async
/// ```
///
/// - Commands may be sent from any number of tasks at once: they go out in the order they reach
///   the channel and replies are matched first-in, first-out (tor answers in order).
/// - Every error thrown is a `TorControlError`. A non-2xx answer is `.rejected` with tor's code
///   and message, except from `send`, which returns any reply as it is (the escape hatch).
/// - 650 events go to `events` (one consumer; the newest 4096 are kept if nobody reads).
///   The stream finishes when the connection closes.
/// - `closeFuture` / `waitUntilClosed()` tell a supervisor the connection is gone (tor exited or
///   restarted): onions added without `Detach` are gone with it and must be added again on a
///   new connection.
/// - Protocol trouble (an over-long line, an over-large reply, a reply to no command) closes the
///   connection and fails everything pending with that error.
public final class TorControlClient: Sendable {
    public static let eventBufferSize = 4096

    private let channel: any Channel
    public let endpoint: TorControlEndpoint
    /// The 650 events tor sends after `setEvents`; finishes when the connection closes.
    public let events: AsyncStream<TorAsyncEvent>
    private let cachedProtocolInfo = Mutex<TorProtocolInfo?>(nil)

    private init(channel: any Channel, endpoint: TorControlEndpoint, events: AsyncStream<TorAsyncEvent>) {
        self.channel = channel
        self.endpoint = endpoint
        self.events = events
    }

    // MARK: Connecting

    /// Connects (not yet authenticated: call `authenticate` next).
    public static func connect(_ endpoint: TorControlEndpoint, group: any EventLoopGroup,
                               connectTimeout: TimeAmount = .seconds(10),
                               maxLineBytes: Int = TorControlReplyParser.defaultMaxLineBytes,
                               maxReplyBytes: Int = TorControlReplyParser.defaultMaxReplyBytes) async throws -> TorControlClient {
        if case .unix(let path) = endpoint {
            guard path.hasPrefix("/") else {
                throw TorControlError.connectFailed(endpoint: path, reason: "the control socket path must be absolute")
            }
            guard path.utf8.count <= TorOnionPort.maxUnixPathBytes else {
                throw TorControlError.connectFailed(endpoint: path, reason: "the path is \(path.utf8.count) bytes, over the unix socket limit of \(TorOnionPort.maxUnixPathBytes); use a shorter ControlSocket path")
            }
        }
        let (events, continuation) = AsyncStream.makeStream(of: TorAsyncEvent.self,
                                                            bufferingPolicy: .bufferingNewest(eventBufferSize))
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = TorControlChannelHandler(parser: TorControlReplyParser(maxLineBytes: maxLineBytes, maxReplyBytes: maxReplyBytes),
                                                           events: continuation)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        let channel: any Channel
        do {
            switch endpoint {
            case .unix(let path): channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
            case .tcp(let host, let port): channel = try await bootstrap.connect(host: host, port: port).get()
            }
        } catch {
            continuation.finish()
            throw TorControlError.connectFailed(endpoint: endpoint.description, reason: Self.describe(error))
        }
        return TorControlClient(channel: channel, endpoint: endpoint, events: events)
    }

    // MARK: Authentication

    /// PROTOCOLINFO, then the best method tor offers: SAFECOOKIE > COOKIE > HASHEDPASSWORD (only
    /// with a password) > NULL, or exactly `method` if given. `cookiePath` overrides the cookie
    /// file PROTOCOLINFO names. Returns the method used.
    @discardableResult
    public func authenticate(password: String? = nil, cookiePath: String? = nil,
                             method: TorAuthMethod? = nil) async throws -> TorAuthMethod {
        let info = try await protocolInfo()
        let offered = info.authMethods
        let chosen: TorAuthMethod
        if let method {
            guard offered.contains(method) else {
                throw TorControlError.noUsableAuthMethod(offered: offered.map(\.description))
            }
            chosen = method
        } else {
            chosen = try Self.bestMethod(offered: offered, havePassword: password != nil,
                                         cookieReadable: { Self.isReadable(cookiePath ?? info.cookieFile) })
        }
        switch chosen {
        case .safeCookie:
            let path = try cookieFile(cookiePath, info)
            let cookie = try Self.readCookie(path)
            let clientNonce = Sodium.randomBytes(TorSafeCookie.nonceByteCount)
            let challengeReply = try await send(.authChallenge(clientNonce: clientNonce))
            if challengeReply.code == 515 || challengeReply.code == 513 {
                throw TorControlError.authenticationFailed(method: "SAFECOOKIE", message: "\(challengeReply.code) \(challengeReply.message)")
            }
            let challenge = try TorAuthChallenge(reply: challengeReply)
            let response = try TorSafeCookie.response(cookie: cookie, cookiePath: path, clientNonce: clientNonce, challenge: challenge)
            try await authenticate(.authenticate(hex: response), method: chosen)
        case .cookie:
            let path = try cookieFile(cookiePath, info)
            try await authenticate(.authenticate(hex: Self.readCookie(path)), method: chosen)
        case .hashedPassword:
            guard let password else { throw TorControlError.passwordRequired }
            try await authenticate(.authenticate(password: password), method: chosen)
        case .null:
            try await authenticate(.authenticateNull, method: chosen)
        case .other(let name):
            throw TorControlError.noUsableAuthMethod(offered: [name])
        }
        return chosen
    }

    /// The method `authenticate` picks. A readable cookie wins; an unreadable one is passed
    /// over for a password when there is one, and otherwise chosen (so the error names the file).
    static func bestMethod(offered: [TorAuthMethod], havePassword: Bool,
                           cookieReadable: () -> Bool) throws(TorControlError) -> TorAuthMethod {
        let cookie: TorAuthMethod? = offered.contains(.safeCookie) ? .safeCookie : offered.contains(.cookie) ? .cookie : nil
        if let cookie, cookieReadable() || !(havePassword && offered.contains(.hashedPassword)) { return cookie }
        if offered.contains(.hashedPassword) {
            if havePassword { return .hashedPassword }
            if !offered.contains(.null) { throw .passwordRequired }
        }
        if offered.contains(.null) { return .null }
        throw .noUsableAuthMethod(offered: offered.map(\.description))
    }

    private func authenticate(_ command: TorControlCommand, method: TorAuthMethod) async throws {
        let reply = try await send(command)
        guard reply.isSuccess else {
            if reply.code == 515 {
                throw TorControlError.authenticationFailed(method: method.description, message: reply.message)
            }
            throw TorControlError.rejected(command: "AUTHENTICATE", code: reply.code, message: reply.message)
        }
    }

    private func cookieFile(_ override: String?, _ info: TorProtocolInfo) throws(TorControlError) -> String {
        guard let path = override ?? info.cookieFile else {
            throw TorControlError.unexpectedReply(command: "PROTOCOLINFO", reply: "cookie authentication offered without COOKIEFILE")
        }
        return path
    }

    private static func isReadable(_ path: String?) -> Bool {
        guard let path else { return false }
        return access(path, R_OK) == 0
    }

    /// The 32 bytes of a cookie file (a longer or shorter file is refused, control-spec §3.21).
    static func readCookie(_ path: String) throws(TorControlError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .cookieUnreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { Glibc.close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64)
        while bytes.count <= TorSafeCookie.cookieByteCount {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw .cookieUnreadable(path: path, reason: String(cString: strerror(errno))) }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        guard bytes.count == TorSafeCookie.cookieByteCount else { throw .badCookieLength(path: path, length: bytes.count) }
        return bytes
    }

    // MARK: Commands

    /// PROTOCOLINFO 1 (asked once per connection, then remembered: tor allows it only once
    /// before authentication).
    public func protocolInfo() async throws -> TorProtocolInfo {
        if let info = cachedProtocolInfo.withLock({ $0 }) { return info }
        let info = try TorProtocolInfo(reply: await send(.protocolInfo))
        cachedProtocolInfo.withLock { $0 = info }
        return info
    }

    /// GETINFO: each key's value (multi-line values joined with "\n").
    public func getInfo(_ keys: [String]) async throws -> [String: String] {
        try TorKeyValueReply.getInfo(await send(.getInfo(keys)))
    }

    /// GETINFO status/bootstrap-phase, parsed.
    public func bootstrapStatus() async throws -> TorBootstrapStatus {
        let key = "status/bootstrap-phase"
        guard let text = try await getInfo([key])[key] else {
            throw TorControlError.unexpectedReply(command: "GETINFO", reply: "no \(key)")
        }
        return try TorBootstrapStatus(statusLine: text)
    }

    public func getConf(_ keys: [String]) async throws -> [(key: String, value: String?)] {
        try TorKeyValueReply.getConf(await send(.getConf(keys)))
    }

    public func setConf(_ settings: [(key: String, value: String?)]) async throws {
        try await require(.setConf(settings))
    }

    public func resetConf(_ keys: [String]) async throws {
        try await require(.resetConf(keys))
    }

    /// SETEVENTS: the events to receive on `events` (replaces the previous set; [] turns them off).
    public func setEvents(_ names: [String]) async throws {
        try await require(.setEvents(names))
    }

    /// ADD_ONION with annexd's key; returns the service id (the 56-character address without
    /// ".onion"). Without `detach`, tor removes the service when this connection closes.
    @discardableResult
    public func addOnion(key: OnionKey, ports: [TorOnionPort], detach: Bool = false) async throws -> String {
        try await addOnion(key: key, ports: ports, flags: detach ? [.detach] : [])
    }

    @discardableResult
    public func addOnion(key: OnionKey, ports: [TorOnionPort], flags: [TorOnionFlag], maxStreams: Int? = nil) async throws -> String {
        let command = try TorControlCommand.addOnion(key: key, ports: ports, flags: flags, maxStreams: maxStreams)
        let reply = try TorAddOnionReply(reply: await send(command))
        guard reply.onionAddress == key.onionAddress else {
            throw TorControlError.unexpectedReply(command: "ADD_ONION",
                                                  reply: "ServiceID \(reply.serviceID) is not the key's address \(key.onionAddress)")
        }
        return reply.serviceID
    }

    /// DEL_ONION (with or without ".onion").
    public func delOnion(_ serviceID: String) async throws {
        try await require(.delOnion(serviceID))
    }

    /// TAKEOWNERSHIP: tor exits when this connection closes. (For a tor started with
    /// `__OwningControllerProcess`, follow with `resetConf(["__OwningControllerProcess"])`.)
    public func takeOwnership() async throws {
        try await require(.takeOwnership)
    }

    public func signal(_ signal: TorSignal) async throws {
        try await require(.signal(signal))
    }

    /// Sends any command and returns tor's reply as it is, whatever its code. Throws only when
    /// there is no reply (the connection closed or broke).
    public func send(_ command: TorControlCommand) async throws -> TorControlReply {
        let promise = channel.eventLoop.makePromise(of: TorControlReply.self)
        channel.writeAndFlush(TorControlRequest(bytes: command.wireBytes, reply: promise)).whenFailure { error in
            promise.fail(error as? TorControlError ?? .connectionClosed)
        }
        do {
            return try await promise.futureResult.get()
        } catch let error as TorControlError {
            throw error
        } catch {
            throw TorControlError.connectionClosed
        }
    }

    private func require(_ command: TorControlCommand) async throws {
        try await send(command).requireSuccess(for: command.keyword)
    }

    // MARK: Lifetime

    public var isOpen: Bool { channel.isActive }

    /// Succeeds when the connection has closed, for whatever reason.
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    /// Returns when the connection has closed (tor exited or restarted, or `close()`).
    public func waitUntilClosed() async {
        try? await channel.closeFuture.get()
    }

    /// Closes the connection; pending commands fail with `.connectionClosed`.
    public func close() async {
        try? await channel.close()
    }

    private static func describe(_ error: any Error) -> String {
        if let e = error as? IOError { return e.description }
        return String(describing: error)
    }
}

/// A command's bytes and where its reply goes.
struct TorControlRequest: Sendable {
    let bytes: [UInt8]
    let reply: EventLoopPromise<TorControlReply>
}

/// The channel handler: writes requests and queues their promises; feeds what arrives to the
/// parser; completes the oldest promise with each reply and yields events.
final class TorControlChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = TorControlRequest
    typealias OutboundOut = ByteBuffer

    private var parser: TorControlReplyParser
    private var waiting = CircularBuffer<EventLoopPromise<TorControlReply>>()
    private let events: AsyncStream<TorAsyncEvent>.Continuation
    /// Set once the connection is unusable: why.
    private var failure: TorControlError?

    init(parser: TorControlReplyParser, events: AsyncStream<TorAsyncEvent>.Continuation) {
        self.parser = parser
        self.events = events
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if let failure {
            request.reply.fail(failure)
            promise?.fail(failure)
            return
        }
        waiting.append(request.reply)
        var buffer = context.channel.allocator.buffer(capacity: request.bytes.count)
        buffer.writeBytes(request.bytes)
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let replies: [TorControlReply]
        do {
            replies = try parser.feed(buffer.readableBytesView)
        } catch {
            fail(context: context, error)
            return
        }
        for reply in replies {
            if reply.isAsync {
                events.yield(TorAsyncEvent(reply: reply))
            } else if let promise = waiting.popFirst() {
                promise.succeed(reply)
            } else {
                fail(context: context, .protocolViolation("tor sent a reply to no command: \(reply.description)"))
                return
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        shutDown(failure ?? .connectionClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, error as? TorControlError ?? .connectionClosed)
    }

    private func fail(context: ChannelHandlerContext, _ error: TorControlError) {
        shutDown(error)
        context.close(promise: nil)
    }

    private func shutDown(_ error: TorControlError) {
        if failure == nil { failure = error }
        while let promise = waiting.popFirst() { promise.fail(error) }
        events.finish()
    }
}
