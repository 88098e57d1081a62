import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSOCKS
import NIOSSL
import NIOWebSocket
import Shared

/// A mailbox server address: `ws://HOST[:PORT][/PATH]` or `wss://…` (magic-wormhole's `--relay-url`).
public struct MailboxURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var path: String
    /// wss://: TLS to the server (port 443 unless given).
    public var tls: Bool
    public let text: String

    public var description: String { text }

    public init(_ text: String) throws(WormholeClientError) {
        self.text = text
        let rest: Substring
        if text.hasPrefix("wss://") {
            tls = true
            rest = text.dropFirst("wss://".count)
        } else if text.hasPrefix("ws://") {
            tls = false
            rest = text.dropFirst("ws://".count)
        } else {
            throw .unsupportedURL(text, reason: "a mailbox URL starts with ws:// or wss://, like ws://relay.magic-wormhole.io:4000/v1")
        }
        let authority = rest.prefix { $0 != "/" }
        path = rest.count > authority.count ? String(rest.dropFirst(authority.count)) : "/"
        var hostPart = Substring(authority)
        var portPart: Substring?
        if authority.hasPrefix("[") {  // [::1]:4000
            guard let close = authority.firstIndex(of: "]") else {
                throw .unsupportedURL(text, reason: "the IPv6 address has no closing ']'")
            }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { portPart = after.dropFirst() }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        }
        guard !hostPart.isEmpty else { throw .unsupportedURL(text, reason: "there is no host name") }
        host = String(hostPart)
        if let portPart {
            guard let p = Int(portPart), (1...65535).contains(p) else {
                throw .unsupportedURL(text, reason: "the port '\(portPart)' is not a number from 1 to 65535")
            }
            port = p
        } else {
            port = tls ? 443 : 80
        }
    }

    /// The Host header: the port only when it is not the scheme's default.
    var hostHeader: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return port == (tls ? 443 : 80) ? h : "\(h):\(port)"
    }

    /// An IP literal gets no SNI name (and is checked against the certificate's IP addresses).
    var isIPLiteral: Bool {
        host.contains(":") || host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." }
    }
}

public enum WormholeClientError: Error, Equatable, Sendable, CustomStringConvertible {
    case unsupportedURL(String, reason: String)
    case connectFailed(String, reason: String)
    case upgradeRefused(String)
    case tlsFailed(String, reason: String)
    case wormhole(WormholeError)
    case timedOut(String, seconds: Double)

    public var description: String {
        switch self {
        case .unsupportedURL(let url, let reason): "cannot use the mailbox URL '\(url)': \(reason)"
        case .connectFailed(let url, let reason):
            "cannot connect to the mailbox server at \(url): \(reason). Check the URL (WORMHOLE_RELAY_URL) and the network"
        case .upgradeRefused(let url):
            "the server at \(url) did not accept a WebSocket connection: is it a magic-wormhole mailbox server (the path is usually /v1)?"
        case .tlsFailed(let url, let reason):
            "the TLS connection to the mailbox server at \(url) failed: \(reason). Is its certificate valid for that host name and trusted here?"
        case .wormhole(let e): e.description
        case .timedOut(let what, let s): "\(what) did not finish within \(Int(s)) seconds; try again with a new code"
        }
    }
}

/// A WebSocket client connection to a mailbox server (swift-nio's NIOWebSocket client
/// upgrade): text frames in and out, client frames masked, pings answered, fragments joined.
struct MailboxWebSocket {
    enum Upgrade: Sendable {
        case websocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>)
        case refused
    }

    /// Connects and upgrades; runs `body` with a stream of text messages and a way to send.
    static func withConnection<R: Sendable>(
        to url: MailboxURL, socks: SOCKSProxy? = nil, trustRoots: String? = nil,
        _ body: (_ inbound: AsyncThrowingStream<[UInt8], Error>, _ send: @escaping @Sendable ([UInt8]) async throws -> Void) async throws -> R
    ) async throws -> R {
        let tls = try url.tls ? tlsContext(url, trustRoots: trustRoots) : nil
        let upgrade: EventLoopFuture<Upgrade>
        do {
            upgrade = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(15))
                .connect(host: socks?.host ?? url.host, port: socks?.port ?? url.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if socks != nil {
                            // Writes (the upgrade request) wait in the handler until tor connected.
                            try channel.pipeline.syncOperations.addHandler(
                                SOCKSClientHandler(targetAddress: .domain(url.host, port: url.port)))
                        }
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(
                                NIOSSLClientHandler(context: tls, serverHostname: url.isIPLiteral ? nil : url.host))
                        }
                        let upgrader = NIOTypedWebSocketClientUpgrader<Upgrade>(
                            maxFrameSize: 1 << 24,
                            upgradePipelineHandler: { channel, _ in
                                channel.eventLoop.makeCompletedFuture {
                                    .websocket(try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(wrappingChannelSynchronously: channel))
                                }
                            })
                        var headers = HTTPHeaders()
                        headers.add(name: "Host", value: url.hostHeader)
                        headers.add(name: "Content-Length", value: "0")
                        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: url.path, headers: headers)
                        let config = NIOTypedHTTPClientUpgradeConfiguration<Upgrade>(
                            upgradeRequestHead: head, upgraders: [upgrader],
                            notUpgradingCompletionHandler: { channel in channel.eventLoop.makeCompletedFuture { .refused } })
                        var pipeline = NIOUpgradableHTTPClientPipelineConfiguration(upgradeConfiguration: config)
                        // The server's `welcome` frame can arrive in the same read as the 101
                        // response; NIO's default (.dropBytes) would lose it.
                        pipeline.leftOverBytesStrategy = .forwardBytes
                        return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                            configuration: pipeline)
                    }
                }
        } catch {
            let via = socks.map { " through the SOCKS proxy \($0.host):\($0.port) (is tor running?)" } ?? ""
            throw WormholeClientError.connectFailed(url.text, reason: "\(error)\(via)")
        }
        let result: Upgrade
        do { result = try await upgrade.get() } catch {
            if error is NIOSSLError || error is BoringSSLError {
                throw WormholeClientError.tlsFailed(url.text, reason: "\(error)")
            }
            throw WormholeClientError.upgradeRefused(url.text)
        }
        guard case .websocket(let channel) = result else { throw WormholeClientError.upgradeRefused(url.text) }

        return try await channel.executeThenClose { inbound, outbound in
            let writer = FrameWriter(outbound: outbound)
            let (stream, continuation) = AsyncThrowingStream<[UInt8], Error>.makeStream()
            let reader = Task {
                var fragments: [UInt8] = []
                do {
                    for try await frame in inbound {
                        switch frame.opcode {
                        case .text, .binary, .continuation:
                            fragments += frame.unmaskedData.readableBytesView
                            if frame.fin {
                                continuation.yield(fragments)
                                fragments = []
                            }
                        case .ping:
                            try await writer.write(.pong, Array(frame.unmaskedData.readableBytesView))
                        case .connectionClose:
                            try? await writer.write(.connectionClose, Array(frame.unmaskedData.readableBytesView.prefix(2)))
                            continuation.finish()
                            return
                        default:
                            break
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            defer { reader.cancel() }
            let r = try await body(stream, { bytes in try await writer.write(.text, bytes) })
            try? await writer.write(.connectionClose, [0x03, 0xe8])  // 1000, normal closure
            return r
        }
    }

    /// TLS for wss://: the system's trust roots, or only those in the PEM file `trustRoots`.
    static func tlsContext(_ url: MailboxURL, trustRoots: String?) throws(WormholeClientError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let trustRoots { configuration.trustRoots = .file(trustRoots) }
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw .tlsFailed(url.text, reason: "cannot set up TLS (\(error))" + (trustRoots.map { "; check the trust roots file \($0)" } ?? ""))
        }
    }

    /// Serialises writes from the reader (pongs) and the driver (messages).
    private actor FrameWriter {
        let outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>
        init(outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>) { self.outbound = outbound }

        func write(_ opcode: WebSocketOpcode, _ bytes: [UInt8]) async throws {
            let frame = WebSocketFrame(fin: true, opcode: opcode, maskKey: .random(), data: ByteBuffer(bytes: bytes))
            try await outbound.write(frame)
        }
    }
}
