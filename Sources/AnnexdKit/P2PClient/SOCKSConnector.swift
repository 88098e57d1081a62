#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import NIOSOCKS

/// Outgoing connections to onion services through tor's SOCKS5 port, with
/// swift-nio-extras' SOCKS client. The established connection is handed to
/// annexd's blocking P2P client as a socket descriptor: NIO relays between it
/// and the proxy connection, with backpressure in both directions.
public enum SOCKSConnector {
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let description: String
        public let reason: String
    }

    /// Connects to `host:port` through the proxy; returns a descriptor the caller owns.
    public static func connect(proxyHost: String, proxyPort: Int, host: String, port: Int,
                               group: EventLoopGroup, timeout: TimeAmount = .seconds(120)) throws -> Int32 {
        let established = group.next().makePromise(of: Void.self)
        let proxy: Channel
        do {
            proxy = try ClientBootstrap(group: group)
                .connectTimeout(.seconds(10))
                .channelOption(.allowRemoteHalfClosure, value: true)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(SOCKSClientHandler(targetAddress: .domain(host, port: port)))
                        try channel.pipeline.syncOperations.addHandler(EstablishedWatcher(promise: established))
                    }
                }
                .connect(host: proxyHost, port: proxyPort).wait()
        } catch {
            established.fail(error)
            throw Failure(description: "cannot reach tor's SOCKS port at \(proxyHost):\(proxyPort) (\(error)); is tor running? (annexd --socks sets the address)",
                          reason: "socks_unreachable")
        }
        let timer = group.next().scheduleTask(in: timeout) {
            established.fail(Failure(description: "tor did not connect to \(host):\(port) within \(timeout.nanoseconds / 1_000_000_000) s", reason: "peer_timeout"))
        }
        do {
            try established.futureResult.wait()
            timer.cancel()
        } catch let f as Failure {
            proxy.close(promise: nil)
            throw f
        } catch {
            timer.cancel()
            proxy.close(promise: nil)
            throw Failure(description: "tor could not connect to \(host):\(port): the peer may be offline or the address wrong (\(error))",
                          reason: "peer_unreachable")
        }

        var pair: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            proxy.close(promise: nil)
            throw Failure(description: "socketpair: \(String(cString: strerror(errno)))", reason: "io_error")
        }
        do {
            let local = try ClientBootstrap(group: group)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .withConnectedSocket(pair[0]).wait()
            let (a, b) = GlueHandler.matchedPair()
            try local.pipeline.addHandler(a).wait()
            try proxy.pipeline.addHandler(b).wait()
        } catch {
            close(pair[1])
            proxy.close(promise: nil)
            throw Failure(description: "cannot relay the connection: \(error)", reason: "io_error")
        }
        return pair[1]
    }

    final class EstablishedWatcher: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let promise: EventLoopPromise<Void>
        init(promise: EventLoopPromise<Void>) { self.promise = promise }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is SOCKSProxyEstablishedEvent { promise.succeed(()) }
            context.fireUserInboundEventTriggered(event)
        }
        func errorCaught(context: ChannelHandlerContext, error: Error) {
            promise.fail(error)
            context.fireErrorCaught(error)
        }
        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(Failure(description: "the SOCKS connection closed", reason: "peer_unreachable"))
            context.fireChannelInactive()
        }
    }
}

/// Relays bytes between two channels (the pattern of swift-nio's connect-proxy
/// example): reads from one are written to the other; when the other cannot
/// take more, reading pauses; half-closes and closes are passed on.
final class GlueHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false

    static func matchedPair() -> (GlueHandler, GlueHandler) {
        let a = GlueHandler(), b = GlueHandler()
        a.partner = b
        b.partner = a
        return (a, b)
    }

    private func partnerWrite(_ data: NIOAny) {
        guard let context else { return }
        // NIOAny is not Sendable; the hop to this handler's own event loop is safe, and
        // NIOLoopBound says so.
        let bound = NIOLoopBound(data, eventLoop: context.eventLoop)
        context.eventLoop.execute { [self] in
            self.context?.write(bound.value, promise: nil)
        }
    }

    private func partnerFlush() {
        context?.eventLoop.execute { [self] in self.context?.flush() }
    }

    private func partnerCloseOutput() {
        context?.eventLoop.execute { [self] in self.context?.close(mode: .output, promise: nil) }
    }

    private func partnerClose() {
        context?.eventLoop.execute { [self] in self.context?.close(promise: nil) }
    }

    private var partnerWritable: Bool { context?.channel.isWritable ?? false }

    private func partnerBecameWritable() {
        context?.eventLoop.execute { [self] in
            if pendingRead {
                pendingRead = false
                context?.read()
            }
        }
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil; partner = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { partner?.partnerWrite(data) }
    func channelReadComplete(context: ChannelHandlerContext) { partner?.partnerFlush() }
    func channelInactive(context: ChannelHandlerContext) { partner?.partnerClose() }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed { partner?.partnerCloseOutput() }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
    }

    func read(context: ChannelHandlerContext) {
        if let partner, partner.partnerWritable { context.read() } else { pendingRead = true }
    }
}
