#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOCore
import NIOPosix
import Shared
import Synchronization

/// Who is calling, and the connection the call came on (for subscriptions).
public struct RPCCaller: Sendable {
    public let uid: UInt32
    public let pid: Int32
    public let connection: RPCConnection
}

/// One client connection: replies and event notifications are written through it.
public final class RPCConnection: @unchecked Sendable {
    let channel: Channel
    private let subscription = Mutex<(id: UInt64, feed: EventFeed)?>(nil)

    init(channel: Channel) { self.channel = channel }

    func write(_ bytes: [UInt8]) {
        var buf = channel.allocator.buffer(capacity: bytes.count + 1)
        buf.writeBytes(bytes)
        buf.writeInteger(UInt8(ascii: "\n"))
        channel.writeAndFlush(buf, promise: nil)
    }

    /// A feed of events for this connection, after `cursor`: its writes go out in call order
    /// (always through the event loop's queue) and report when they have left.
    func makeFeed(log: EventLog, after cursor: UInt64, types: Set<String>?) -> EventFeed {
        let channel = self.channel
        return EventFeed(log: log, after: cursor, types: types) { bytes, written in
            channel.eventLoop.execute {
                var buf = channel.allocator.buffer(capacity: bytes.count + 1)
                buf.writeBytes(bytes)
                buf.writeInteger(UInt8(ascii: "\n"))
                let promise = channel.eventLoop.makePromise(of: Void.self)
                promise.futureResult.whenComplete { _ in written() }
                channel.writeAndFlush(buf, promise: promise)
            }
        }
    }

    private let afterReply = Mutex<[@Sendable () -> Void]>([])
    /// Requests being answered, and whether the client closed its sending side:
    /// a client that sends and half-closes (socat, `nc -N`) still gets its replies.
    private let flow = Mutex<(inFlight: Int, inputClosed: Bool)>((0, false))

    func began() { flow.withLock { $0.inFlight += 1 } }

    func finished() {
        let close = flow.withLock { f -> Bool in
            f.inFlight -= 1
            return f.inputClosed && f.inFlight == 0
        }
        if close && subscription.withLock({ $0 == nil }) { channel.close(promise: nil) }
    }

    func inputClosed() {
        let close = flow.withLock { f -> Bool in
            f.inputClosed = true
            return f.inFlight == 0
        }
        // Queued behind the event loop's pending tasks: a reply written from
        // another thread just before must go out before the close.
        if close && subscription.withLock({ $0 == nil }) {
            let channel = self.channel
            channel.eventLoop.execute { channel.close(promise: nil) }
        }
    }

    /// Runs `work` once the reply to the current request has been written
    /// (an event subscription starts streaming only after its result).
    public func afterReply(_ work: @escaping @Sendable () -> Void) {
        afterReply.withLock { $0.append(work) }
    }

    func runAfterReply() {
        let work = afterReply.withLock { w in defer { w = [] }; return w }
        for w in work { w() }
    }

    /// The event subscription of this connection (one at a time): sets it, returning the one
    /// it replaces (whose feed is ended).
    func setSubscription(_ new: (id: UInt64, feed: EventFeed)?) -> UInt64? {
        let old = subscription.withLock { old in defer { old = new }; return old }
        old?.feed.end()
        return old?.id
    }

    public func close() { channel.close(promise: nil) }
}

/// The JSON-RPC server on the daemon's unix socket: one JSON text per line,
/// UTF-8; the socket 0600 in a 0700 directory; callers of another uid refused
/// (SO_PEERCRED). Requests run concurrently; replies carry their ids.
public final class RPCServer: @unchecked Sendable {
    public struct Limits: Sendable {
        public var maxLineBytes = 1 << 20
        public var maxConnections = 1024
        public var rpc = RPCLimits()
        public init() {}
    }

    public let socketPath: String
    let group: EventLoopGroup
    let dispatcher: RPCDispatcher<RPCCaller>
    let limits: Limits
    let onDisconnect: @Sendable (RPCConnection) -> Void
    private var channel: Channel?
    private let connections = Atomic<Int>(0)
    public init(socketPath: String, group: EventLoopGroup, dispatcher: RPCDispatcher<RPCCaller>, limits: Limits = .init(),
                onDisconnect: @escaping @Sendable (RPCConnection) -> Void) {
        self.socketPath = socketPath
        self.group = group
        self.dispatcher = dispatcher
        self.limits = limits
        self.onDisconnect = onDisconnect
    }

    public struct SocketInUse: Error, CustomStringConvertible {
        public let path: String
        public var description: String {
            "\(path) is in use by a running annexd; stop it first, or use another --socket"
        }
    }

    public func start() throws {
        let dir = Posix.dirname(socketPath)
        try Posix.makeDirectories(dir, mode: 0o700)
        chmod(dir, 0o700)
        // A socket left by a daemon that died is removed; one that answers is not ours to take.
        if Posix.exists(socketPath) {
            if Self.answers(socketPath) { throw SocketInUse(path: socketPath) }
            unlink(socketPath)
        }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(BoundedLineDecoder(maxLength: limits.maxLineBytes)))
                    try channel.pipeline.syncOperations.addHandler(RPCChannelHandler(server: self))
                }
            }
        // The socket is created 0600 (umask) so no other user can race to connect.
        let old = umask(0o177)
        defer { umask(old) }
        channel = try bootstrap.bind(unixDomainSocketPath: socketPath).wait()
        chmod(socketPath, 0o600)
    }

    public func stop() {
        try? channel?.close().wait()
        unlink(socketPath)
    }

    public var connectionCount: Int { connections.load(ordering: .relaxed) }

    static func answers(_ path: String) -> Bool {
        guard let fd = try? UnixSocket.connect(path) else { return false }
        close(fd)
        return true
    }

    fileprivate func admit() -> Bool {
        if connections.wrappingAdd(1, ordering: .relaxed).newValue <= limits.maxConnections { return true }
        connections.wrappingSubtract(1, ordering: .relaxed)
        return false
    }

    fileprivate func leave() { connections.wrappingSubtract(1, ordering: .relaxed) }
}

/// SO_PEERCRED's `struct ucred` (Linux layout).
struct PeerCredentials: Sendable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}

final class RPCChannelHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let server: RPCServer
    private var caller: RPCCaller?
    /// Lines (and an end of input) that arrive before the credentials check completes.
    private var queued: [ByteBuffer] = []
    private var inputEndedEarly = false
    private var admitted = false
    /// Refused (wrong uid, too many connections): input is discarded until the close.
    private var rejected = false
    private var connection: RPCConnection?

    init(server: RPCServer) { self.server = server }

    func channelActive(context: ChannelHandlerContext) {
        let conn = RPCConnection(channel: context.channel)
        connection = conn
        admitted = server.admit()
        guard admitted else {
            reject(conn, RPCError(.busy, message: "annexd has too many RPC connections open (\(server.limits.maxConnections)); try again later", reason: "too_many_connections"))
            return
        }
        guard let provider = context.channel as? SocketOptionProvider else { conn.close(); return }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
            .whenComplete { (result: Result<PeerCredentials, Error>) in
                let handler = loopBound.value
                switch result {
                case .success(let cred) where cred.uid == getuid():
                    let caller = RPCCaller(uid: cred.uid, pid: cred.pid, connection: conn)
                    handler.caller = caller
                    for line in handler.queued { handler.handle(line, caller) }
                    handler.queued = []
                    if handler.inputEndedEarly { conn.inputClosed() }
                case .success(let cred):
                    handler.reject(conn, RPCError(.permissionDenied, message: "uid \(cred.uid) may not use the annexd of uid \(getuid())",
                                                  reason: "wrong_uid"))
                case .failure:
                    handler.reject(conn, RPCError(.permissionDenied, message: "cannot check the caller's credentials", reason: "no_peer_credentials"))
                }
            }
    }

    /// Answers `error` and ends the connection without reading anything more. Output is
    /// half-closed first and whatever the client still sends is discarded until it closes
    /// (or 2 s pass): closing a unix socket with unread input makes the client's next read
    /// fail with ECONNRESET, which could lose the refusal before the client reads it.
    private func reject(_ conn: RPCConnection, _ error: RPCError, drain: Bool = true) {
        rejected = true
        queued = []
        conn.write(RPCResponse(id: .null, error: error).serializedBytes())
        guard drain else { conn.close(); return }
        let channel = conn.channel
        channel.close(mode: .output, promise: nil)
        channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if admitted { server.leave() }
        if let connection { server.onDisconnect(connection) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !rejected else { return }
        let line = unwrapInboundIn(data)
        guard let caller else {
            if queued.count < 64 { queued.append(line) } else { context.close(promise: nil) }
            return
        }
        handle(line, caller)
    }

    private func handle(_ line: ByteBuffer, _ caller: RPCCaller) {
        let dispatcher = server.dispatcher
        let incoming = JSONRPC.parseIncoming(line.readableBytesView, limits: server.limits.rpc)
        // Methods registered inline are answered right here on the event loop: two thread hops fewer.
        if case .single(.request(let request)) = incoming, let result = dispatcher.answerInline(request, context: caller) {
            if let id = request.id { caller.connection.write(RPCResponse(id: id, result: result).serializedBytes()) }
            return
        }
        caller.connection.began()
        Task {
            let reply = await dispatcher.reply(to: incoming, context: caller)
            if let out = reply.serializedBytes() { caller.connection.write(out) }
            caller.connection.runAfterReply()
            caller.connection.finished()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed {
            if rejected { context.close(promise: nil); return }
            if caller == nil { inputEndedEarly = true } else { connection?.inputClosed() }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is BoundedLineDecoder.LineTooLong, let connection {
            // The stream cannot be resynchronised, and its bytes are not worth draining.
            reject(connection, RPCError(.parseError, message: "request line longer than \(server.limits.maxLineBytes) bytes",
                                        reason: "too_large"), drain: false)
        } else {
            context.close(promise: nil)
        }
    }
}
