import NIOCore
import Shared

/// A native magic-wormhole client (text for now), compatible with `wormhole send --text` /
/// `wormhole receive` 0.24: the I/O shell around `MailboxMachine`.
public enum Wormhole {
    public static let defaultMailboxURL = "ws://relay.magic-wormhole.io:4000/v1"
    public static let defaultAppID = "lothar.com/wormhole/text-or-file-xfer"
    /// git-annex's `p2p --pair` appid.
    public static let gitAnnexAppID = "git-annex.branchable.com/p2p-setup"

    public static let defaultTransitHelper = "tcp:transit.magic-wormhole.io:4001"

    public struct Configuration: Sendable {
        public var mailboxURL: String
        public var appID: String
        /// Gives up (mood lonely/errory) when the whole exchange takes longer; nil waits forever,
        /// as the Python CLI does.
        public var timeout: Duration?
        /// How file transfers connect (relay, listening, delays).
        public var transit: TransitOptions
        /// Mailbox and transit connections go through this SOCKS5 proxy (tor); nothing listens then.
        public var socks: SOCKSProxy?
        /// wss:// trusts only the CA certificates in this PEM file (default: the system's roots).
        public var tlsTrustRoots: String?
        /// Sees every server message (`<- {…}`) and machine action, for debugging.
        public var trace: (@Sendable (String) -> Void)?

        public init(mailboxURL: String = Wormhole.defaultMailboxURL, appID: String = Wormhole.defaultAppID,
                    timeout: Duration? = nil,
                    transit: TransitOptions = TransitOptions(relay: try? TransitEndpoint(helper: Wormhole.defaultTransitHelper)),
                    socks: SOCKSProxy? = nil, trace: (@Sendable (String) -> Void)? = nil) {
            self.mailboxURL = mailboxURL
            self.appID = appID
            self.timeout = timeout
            self.transit = transit
            self.socks = socks
            self.trace = trace
        }

        /// The defaults, with the mailbox URL from `WORMHOLE_RELAY_URL` and the transit relay
        /// from `WORMHOLE_TRANSIT_HELPER` when they are set (as the Python CLI reads them).
        public static func fromEnvironment(_ env: [String: String], appID: String = Wormhole.defaultAppID) throws -> Configuration {
            var c = Configuration(appID: appID)
            if let url = env["WORMHOLE_RELAY_URL"], !url.isEmpty {
                _ = try MailboxURL(url)
                c.mailboxURL = url
            }
            if let helper = env["WORMHOLE_TRANSIT_HELPER"], !helper.isEmpty {
                c.transit.relay = try TransitEndpoint(helper: helper)
            }
            return c
        }

        /// The transit options as used: through SOCKS nothing listens.
        var effectiveTransit: TransitOptions {
            var t = transit
            if let socks {
                t.socks = socks
                t.listen = false
            }
            return t
        }
    }

    /// Sends `text` like `wormhole send --text`: allocates a code (`code == nil`, `wordCount`
    /// words) or uses the given one, reports it through `onCode` (show it to the user), waits
    /// for the receiver's answer and closes. Throws `WormholeClientError.wormhole(.wrongCode)`
    /// when the receiver typed another code.
    public static func sendText(_ text: String, code: WormholeCode? = nil, wordCount: Int = 2,
                                configuration: Configuration = .init(),
                                onCode: @escaping @Sendable (WormholeCode) -> Void = { _ in }) async throws {
        let offer = JSONValue.object(["offer": .object(["message": .string(text)])]).serializedBytes()
        let given = code
        if let given { onCode(given) }
        let outcome = try await run(configuration, start: { m in
            var out = given.map { m.setCode($0) } ?? m.allocateCode(wordCount: wordCount)
            out += m.send(offer)
            return out
        }, onEvent: { event, m, result, _ in
            switch event {
            case .codeAllocated(let c):
                onCode(c)
                return []
            case .message(_, let body):
                guard let msg = try? JSONValue(parsing: body) else {
                    result.error = .peerError("the receiver sent a message that is not JSON")
                    return m.close(mood: .errory)
                }
                if let error = msg["error"]?.stringValue {
                    result.error = .peerError("the receiver refused the text: \(error)")
                    return m.close(mood: .happy)
                }
                guard let answer = msg["answer"] else { return [] }  // e.g. a transit message: ignore
                guard answer["message_ack"]?.stringValue == "ok" else {
                    result.error = .peerError("the receiver did not acknowledge the text: \(answer)")
                    return m.close(mood: .happy)
                }
                result.done = true
                return m.close(mood: .happy)
            default:
                return []
            }
        })
        guard outcome.done else {
            throw WormholeClientError.wormhole(.protocolError("the wormhole closed before the receiver acknowledged the text"))
        }
    }

    /// Receives one text message like `wormhole receive CODE`, acknowledges it and returns it.
    /// A file or directory offer is refused (`{"error": …}` to the sender) and thrown.
    public static func receiveText(code: WormholeCode, configuration: Configuration = .init()) async throws -> String {
        let received = try await run(configuration, start: { m in m.setCode(code) }, onEvent: { event, m, result, _ in
            guard case .message(_, let body) = event else { return [] }
            guard let msg = try? JSONValue(parsing: body) else {
                result.error = .peerError("the sender sent a message that is not JSON")
                return m.close(mood: .errory)
            }
            if let error = msg["error"]?.stringValue {
                result.error = .peerError("the sender reported an error: \(error)")
                return m.close(mood: .happy)
            }
            guard let offer = msg["offer"] else { return [] }  // transit hints etc.: not for text
            guard let text = offer["message"]?.stringValue else {
                let what = offer["file"] != nil ? "a file" : offer["directory"] != nil ? "a directory" : "something other than text"
                result.error = .peerError("the sender offered \(what); only text messages can be received so far")
                let refusal = JSONValue.object(["error": .string("transfer rejected: annexd can only receive text messages so far")])
                return m.send(refusal.serializedBytes()) + m.close(mood: .happy)
            }
            result.text = text
            result.done = true
            let ack = JSONValue.object(["answer": .object(["message_ack": .string("ok")])]).serializedBytes()
            return m.send(ack) + m.close(mood: .happy)
        })
        guard let text = received.text else {
            throw WormholeClientError.wormhole(.protocolError("the wormhole closed without a text message"))
        }
        return text
    }

    /// What an application callback found out while the machine ran.
    struct Outcome: Sendable {
        var done = false
        var text: String?
        var file: ReceivedFile?
        var peerHints = TransitHints()
        var hintsSent = false
        var route: String?
        var error: WormholeError?
    }

    typealias Step = @Sendable (inout MailboxMachine, inout Outcome) -> [MailboxMachine.Action]

    /// Lets work outside the machine (Transit) act on it later: the step runs on the driver's loop.
    struct Poster: Sendable {
        let continuation: AsyncStream<MailboxDriver.Input>.Continuation
        func post(_ step: @escaping Step) { continuation.yield(.step(step)) }
    }

    /// How long to wait before each attempt to reconnect to the mailbox after a connection
    /// dropped mid-way (about 16 s in all while the server stays away); then, or after
    /// `maxReconnections` in one wormhole, it fails (`.connectionLost`).
    static let reconnectDelays: [Duration] = [.milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8)]
    static let maxReconnections = 10

    /// Connects, runs the machine until it closes (reconnecting when the connection drops
    /// mid-way: the first connection's failure is reported at once), and turns its failures into errors.
    static func run(_ configuration: Configuration,
                    start: @escaping @Sendable (inout MailboxMachine) -> [MailboxMachine.Action],
                    onEvent: @escaping @Sendable (MailboxEvent, inout MailboxMachine, inout Outcome, Poster) -> [MailboxMachine.Action])
        async throws -> Outcome
    {
        let url = try MailboxURL(configuration.mailboxURL)
        let body: @Sendable () async throws -> Outcome = {
            let (inputs, continuation) = AsyncStream<MailboxDriver.Input>.makeStream()
            defer { continuation.finish() }
            var driver = MailboxDriver(machine: MailboxMachine(.init(appID: configuration.appID)), trace: configuration.trace,
                                       onEvent: onEvent, poster: Poster(continuation: continuation))
            var iterator = inputs.makeAsyncIterator()
            var generation = 0
            var failedAttempts = 0
            var reconnections = 0
            while true {
                generation += 1
                let connection = generation
                do {
                    try await MailboxWebSocket.withConnection(to: url, socks: configuration.socks, trustRoots: configuration.tlsTrustRoots) { inbound, send in
                        failedAttempts = 0
                        let reader = Task {
                            do {
                                for try await text in inbound { continuation.yield(.frame(connection, text)) }
                                continuation.yield(.ended(connection))
                            } catch {
                                continuation.yield(.ended(connection))
                            }
                        }
                        defer { reader.cancel() }
                        driver.queue += driver.machine.connected()
                        if connection == 1 { driver.queue += start(&driver.machine) }
                        try await driver.serve(&iterator, connection: connection, send: send)
                    }
                } catch let error as WormholeClientError where connection > 1 {
                    configuration.trace?("reconnecting to \(url) failed: \(error)")
                    failedAttempts += 1
                }
                if driver.finished { break }
                driver.dropped()
                reconnections += 1
                guard failedAttempts < reconnectDelays.count, reconnections <= maxReconnections, driver.machine.resumable else {
                    driver.queue += driver.machine.connectionLost()
                    try await driver.drain(send: nil)
                    break
                }
                configuration.trace?("the connection to \(url) dropped; reconnecting")
                try await Task.sleep(for: reconnectDelays[failedAttempts])
            }
            if let e = driver.outcome.error ?? driver.failure { throw WormholeClientError.wormhole(e) }
            return driver.outcome
        }
        guard let timeout = configuration.timeout else { return try await body() }
        return try await withThrowingTaskGroup(of: Outcome?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let outcome = first else {
                let seconds = Double(timeout.components.seconds)
                throw WormholeClientError.timedOut("the wormhole with \(url)", seconds: seconds)
            }
            return outcome
        }
    }
}
