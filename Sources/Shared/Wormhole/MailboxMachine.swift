/// One wormhole's client side of the mailbox protocol, as a pure state machine (no sockets, no
/// clocks): the shell feeds it the server's JSON messages and the application's calls, and
/// performs the actions it returns (send a JSON message, report an event, drop the connection).
///
/// It behaves as magic-wormhole 0.24's client (`_boss`, `_nameplate`, `_mailbox`, `_key`,
/// `_receive`, `_send`, `_order`, `_terminator`) on one connection:
/// - `bind` at once on connect; `allocate` → `claim` → `open`; `add pake` right after `open`;
/// - the peer's messages before its `pake` wait; on the `pake` the key is computed and our
///   `version` goes out at once; own app phases (`0`, `1`, …) wait until a peer message
///   decrypts (key confirmation);
/// - own echoes (our side) are dropped, peer phases de-duplicated;
/// - the nameplate is released on the first peer message (the code is then consumed);
/// - a peer message that does not decrypt means a wrong code: mood `scary`, `.wrongCode`;
/// - `close` releases and closes with a mood, and reports `.closed` once the server confirmed.
///
/// - a dropped connection (`connectionDropped`) can be resumed, as magic-wormhole does: on the
///   next `connected` it binds again with the same side, claims the nameplate again (unless
///   released), opens the same mailbox and sends again every `add` the server has not echoed
///   yet (the server replays the mailbox; peer phases are de-duplicated). Giving up is
///   `connectionLost` (`.connectionLost`).
public struct MailboxMachine: Sendable {
    public struct Configuration: Sendable {
        public var appID: String
        /// 10 lowercase hex chars (5 random bytes), as the Python client.
        public var side: String
        public var clientVersion: (String, String)
        /// The plaintext of our `version` phase; magic-wormhole sends `{"app_versions": {}}`.
        public var appVersions: JSONValue
        /// Fixed SPAKE2 entropy (tests only).
        public var spakeEntropy: [UInt8]?

        public init(appID: String, side: String = MailboxMachine.randomSide(),
                    clientVersion: (String, String) = ("annexd", "0.1"),
                    appVersions: JSONValue = .object([:]), spakeEntropy: [UInt8]? = nil) {
            self.appID = appID
            self.side = side
            self.clientVersion = clientVersion
            self.appVersions = appVersions
            self.spakeEntropy = spakeEntropy
        }
    }

    /// How the wormhole ended, sent to the server in `close` (it records it).
    public enum Mood: String, Sendable, Equatable {
        /// At least one peer message decrypted.
        case happy
        /// Closed before the peer showed up.
        case lonely
        /// A peer message failed to decrypt (wrong code, or an attacker's guess).
        case scary
        /// A server or protocol error.
        case errory
        /// The server's welcome carried an error.
        case unwelcome
    }

    public enum Action: Sendable, Equatable {
        /// Send this JSON object as one WebSocket text frame.
        case send(JSONValue)
        case event(MailboxEvent)
        /// Everything is done (or failed): close the WebSocket.
        case disconnect
    }

    public private(set) var configuration: Configuration
    public private(set) var code: WormholeCode?
    public private(set) var nameplate: String?
    public private(set) var mailbox: String?
    /// The SPAKE2 key, once the peer's `pake` arrived.
    public private(set) var key: [UInt8]?
    /// A peer message decrypted with `key`: the peer has the same code.
    public private(set) var verified = false
    public private(set) var mood: Mood = .lonely
    /// Set once `close` was sent (or the machine failed); no more input is acted on after `.closed`.
    public private(set) var closing = false
    public private(set) var closed = false

    private var isConnected = false
    private var allocating = false
    private var codeWordCount = 2
    private var claimed = false
    private var released = false
    private var releaseSent = false
    private var closeSent = false
    private var closedByServer = false
    private var spake: SPAKE2Symmetric?
    /// `add`s waiting for `open` (or for a connection).
    private var pendingAdds: [(phase: String, body: [UInt8])] = []
    /// `add`s sent whose echo has not come back: sent again after a reconnection.
    private var unechoedAdds: [(phase: String, body: [UInt8])] = []
    /// Own app messages waiting for key confirmation (already numbered).
    private var pendingAppMessages: [(phase: Int, plaintext: [UInt8])] = []
    private var nextOutboundPhase = 0
    /// Peer messages (side, phase, body) received before its pake.
    private var earlyPeerMessages: [(side: String, phase: String, body: [UInt8])] = []
    private var seenPeerPhases: Set<String> = []
    private var sawPeer = false
    /// Peer app phases decrypted but not yet delivered (delivered strictly in order).
    private var inboundApp: [Int: [UInt8]] = [:]
    private var nextInboundPhase = 0
    private var randomByte: @Sendable () -> UInt8

    public init(_ configuration: Configuration, randomByte: @escaping @Sendable () -> UInt8 = { Sodium.randomBytes(1)[0] }) {
        self.configuration = configuration
        self.randomByte = randomByte
    }

    /// 5 random bytes as 10 lowercase hex characters.
    public static func randomSide() -> String { Hex.encode(Sodium.randomBytes(5)) }

    // MARK: - Inputs from the shell

    /// The WebSocket is open: bind (and send anything already asked for). After a dropped
    /// connection: claim, open and send again what the server may have lost.
    public mutating func connected() -> [Action] {
        guard !isConnected, !closed else { return [] }
        isConnected = true
        var out: [Action] = [.send(command("bind", [
            "appid": .string(configuration.appID),
            "side": .string(configuration.side),
            "client_version": [.string(configuration.clientVersion.0), .string(configuration.clientVersion.1)],
        ]))]
        if allocating { out.append(.send(command("allocate", [:]))) }
        if let nameplate, !allocating {
            if !releaseSent {
                out.append(.send(command("claim", ["nameplate": .string(nameplate)])))
            } else if !released {
                out.append(.send(command("release", ["nameplate": .string(nameplate)])))
            }
        }
        if claimed, let mailbox {
            out.append(.send(command("open", ["mailbox": .string(mailbox)])))
            let again = unechoedAdds
            unechoedAdds = []
            pendingAdds = again + pendingAdds
            if closeSent {
                if !closedByServer { out.append(.send(command("close", ["mailbox": .string(mailbox), "mood": .string(mood.rawValue)]))) }
            } else {
                out += flushAdds()
            }
        }
        return out
    }

    /// The connection dropped, to be resumed by the next `connected` (or given up with
    /// `connectionLost`). Nothing is sent meanwhile; what the application asks waits.
    public mutating func connectionDropped() {
        isConnected = false
    }

    /// Worth reconnecting: not closed yet.
    public var resumable: Bool { !closed }

    /// One text frame from the server.
    public mutating func received(text: [UInt8]) -> [Action] {
        let value: JSONValue
        do { value = try JSONValue(parsing: text) } catch {
            return fail(.protocolError("the mailbox server sent a frame that is not JSON (\(error.message))"), mood: .errory)
        }
        return received(value)
    }

    public mutating func received(_ message: JSONValue) -> [Action] {
        guard !closed else { return [] }
        guard let type = message["type"]?.stringValue else {
            return fail(.protocolError("the mailbox server sent a message without a \"type\": \(message)"), mood: .errory)
        }
        switch type {
        case "welcome": return handleWelcome(message["welcome"] ?? .object([:]))
        case "nameplates":
            let ids = (message["nameplates"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
            return [.event(.nameplates(ids))]
        case "allocated": return handleAllocated(message["nameplate"]?.stringValue)
        case "claimed": return handleClaimed(message["mailbox"]?.stringValue)
        case "message": return handleMessage(message)
        case "released":
            released = true
            return maybeFinishClose()
        case "closed":
            closedByServer = true
            return maybeFinishClose()
        case "error":
            let text = message["error"]?.stringValue ?? "unknown error"
            if text == "crowded" { return fail(.crowded, mood: .errory) }
            return fail(.serverError(text, original: message["orig"]), mood: .errory)
        case "ack", "pong": return []
        default: return []  // unknown server messages are ignored, as the Python client does
        }
    }

    /// The connection dropped. Ends the wormhole unless it was already closed.
    public mutating func connectionLost() -> [Action] {
        guard !closed else { return [] }
        closed = true
        closing = true
        var out: [Action] = []
        if !closeSent || !closedByServer {
            out.append(.event(.failed(.connectionLost)))
        }
        out.append(.event(.closed(mood)))
        return out
    }

    // MARK: - Inputs from the application

    /// Asks the server for a nameplate and makes a code on it with `wordCount` words.
    public mutating func allocateCode(wordCount: Int = 2) -> [Action] {
        guard code == nil, !allocating, !closing else { return [] }
        allocating = true
        codeWordCount = max(1, wordCount)
        return isConnected ? [.send(command("allocate", [:]))] : []
    }

    /// Uses a code the user typed (or the peer showed).
    public mutating func setCode(_ code: WormholeCode) -> [Action] {
        guard self.code == nil, !allocating, !closing else { return [] }
        return useCode(code, claim: true)
    }

    /// Asks for the list of nameplates in use (for completion); answered with `.nameplates`.
    public mutating func listNameplates() -> [Action] {
        isConnected && !closing ? [.send(command("list", [:]))] : []
    }

    /// Sends `plaintext` as the next app phase (`0`, `1`, …). It goes out once the key is
    /// confirmed (a peer message decrypted).
    public mutating func send(_ plaintext: [UInt8]) -> [Action] {
        guard !closing else { return [] }
        pendingAppMessages.append((nextOutboundPhase, plaintext))
        nextOutboundPhase += 1
        return flushAppMessages()
    }

    /// Ends the wormhole: releases the nameplate and closes the mailbox with `mood` (default:
    /// happy when the peer was verified, lonely otherwise), then reports `.closed` when the
    /// server confirmed.
    public mutating func close(mood: Mood? = nil) -> [Action] {
        guard !closing else { return [] }
        if let mood { self.mood = mood }
        return startClose()
    }

    // MARK: - Server messages

    private mutating func handleWelcome(_ welcome: JSONValue) -> [Action] {
        var out: [Action] = [.event(.welcome(welcome))]
        if let motd = welcome["motd"]?.stringValue { out.append(.event(.motd(motd))) }
        if let error = welcome["error"]?.stringValue {
            out += fail(.unwelcome(error), mood: .unwelcome)
        }
        return out
    }

    private mutating func handleAllocated(_ nameplate: String?) -> [Action] {
        guard allocating, code == nil else { return [] }
        guard let nameplate else {
            return fail(.protocolError("the mailbox server's \"allocated\" has no nameplate"), mood: .errory)
        }
        allocating = false
        let random = randomByte
        let code: WormholeCode
        do { code = try WormholeCode.generate(nameplate: nameplate, wordCount: codeWordCount, randomByte: { random() }) } catch {
            return fail(.protocolError("the mailbox server allocated an unusable nameplate '\(nameplate)': \(error)"), mood: .errory)
        }
        return [.event(.codeAllocated(code))] + useCode(code, claim: true)
    }

    private mutating func useCode(_ code: WormholeCode, claim: Bool) -> [Action] {
        self.code = code
        nameplate = code.nameplate
        var out: [Action] = []
        do {
            let spake = try SPAKE2Symmetric(code: code, appID: configuration.appID, entropy: configuration.spakeEntropy)
            self.spake = spake
            let body = JSONValue.object(["pake_v1": .string(Hex.encode(spake.outboundMessage))]).serializedBytes()
            pendingAdds.append(("pake", body))
        } catch {
            return fail(.protocolError("SPAKE2 failed to start: \(error)"), mood: .errory)
        }
        if claim && isConnected {
            out.append(.send(command("claim", ["nameplate": .string(code.nameplate)])))
        }
        return out
    }

    private mutating func handleClaimed(_ mailbox: String?) -> [Action] {
        guard !claimed, !closing else { return [] }
        guard let mailbox else {
            return fail(.protocolError("the mailbox server's \"claimed\" has no mailbox id"), mood: .errory)
        }
        claimed = true
        self.mailbox = mailbox
        var out: [Action] = [.send(command("open", ["mailbox": .string(mailbox)]))]
        out += flushAdds()
        return out
    }

    private mutating func handleMessage(_ m: JSONValue) -> [Action] {
        guard !closing else { return [] }
        guard let side = m["side"]?.stringValue, let phase = m["phase"]?.stringValue,
              let bodyHex = m["body"]?.stringValue else {
            return fail(.protocolError("the mailbox server sent a message without side, phase or body: \(m)"), mood: .errory)
        }
        if side == configuration.side {  // our own echo: the server has it
            if let i = unechoedAdds.firstIndex(where: { $0.phase == phase }) { unechoedAdds.remove(at: i) }
            return []
        }
        guard !seenPeerPhases.contains(phase) else { return [] }
        seenPeerPhases.insert(phase)
        guard let body = Hex.decode(bodyHex) else {
            return fail(.protocolError("the peer's \(phase) message body is not hex"), mood: .errory)
        }
        var out: [Action] = []
        if !sawPeer {
            sawPeer = true
            // The first message from the other side consumes the code: release the nameplate.
            out += sendRelease()
        }
        if phase == "pake" {
            out += handlePake(body)
            if closing { return out }
            let early = earlyPeerMessages
            earlyPeerMessages = []
            for e in early {
                out += handleEncrypted(side: e.side, phase: e.phase, body: e.body)
                if closing { break }
            }
            return out
        }
        if key == nil {
            earlyPeerMessages.append((side, phase, body))
            return out
        }
        return out + handleEncrypted(side: side, phase: phase, body: body)
    }

    private mutating func handlePake(_ body: [UInt8]) -> [Action] {
        guard let spake else { return [] }
        guard let payload = try? JSONValue(parsing: body), let hex = payload["pake_v1"]?.stringValue,
              let msg = Hex.decode(hex) else {
            return fail(.badPake("the peer's pake message has no \"pake_v1\""), mood: .scary)
        }
        let key: [UInt8]
        do { key = try spake.finish(msg) } catch {
            return fail(.badPake("\(error)"), mood: .scary)
        }
        self.key = key
        var out: [Action] = [.event(.gotKey(verifier: WormholeKeys.verifier(key)))]
        let version = SecretBox.seal(configuration.appVersions.serializedBytesForVersion(),
                                     key: WormholeKeys.phaseKey(key, side: configuration.side, phase: "version"))
        out += add(phase: "version", body: version)
        return out
    }

    private mutating func handleEncrypted(side: String, phase: String, body: [UInt8]) -> [Action] {
        guard let key else { return [] }
        guard let plaintext = SecretBox.open(body, key: WormholeKeys.phaseKey(key, side: side, phase: phase)) else {
            return fail(.wrongCode, mood: .scary)
        }
        var out: [Action] = []
        if !verified {
            verified = true
            mood = .happy
            out.append(.event(.verified))
            out += flushAppMessages()
        }
        if phase == "version" {
            let versions = (try? JSONValue(parsing: plaintext)) ?? .object([:])
            out.append(.event(.peerVersions(versions["app_versions"] ?? .object([:]))))
        } else if let n = Int(phase), phase.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            inboundApp[n] = plaintext
            while let next = inboundApp.removeValue(forKey: nextInboundPhase) {
                out.append(.event(.message(phase: nextInboundPhase, body: next)))
                nextInboundPhase += 1
            }
        }
        // Other phases (dilate-N, unknown) are ignored, as magic-wormhole does.
        return out
    }

    // MARK: - Sending

    private func command(_ type: String, _ fields: JSONObject) -> JSONValue {
        var o = fields
        o["type"] = .string(type)
        return .object(o)
    }

    private mutating func add(phase: String, body: [UInt8]) -> [Action] {
        pendingAdds.append((phase, body))
        return flushAdds()
    }

    private mutating func flushAdds() -> [Action] {
        guard claimed, !closeSent, isConnected else { return [] }
        let adds = pendingAdds
        pendingAdds = []
        unechoedAdds += adds
        return adds.map { .send(command("add", ["phase": .string($0.phase), "body": .string(Hex.encode($0.body))])) }
    }

    private mutating func flushAppMessages() -> [Action] {
        guard verified, let key, !closing else { return [] }
        let messages = pendingAppMessages
        pendingAppMessages = []
        var out: [Action] = []
        for m in messages {
            let phase = String(m.phase)
            let box = SecretBox.seal(m.plaintext, key: WormholeKeys.phaseKey(key, side: configuration.side, phase: phase))
            out += add(phase: phase, body: box)
        }
        return out
    }

    private mutating func sendRelease() -> [Action] {
        guard let nameplate, !releaseSent, isConnected else { return [] }
        releaseSent = true
        return [.send(command("release", ["nameplate": .string(nameplate)]))]
    }

    // MARK: - Closing

    private mutating func fail(_ error: WormholeError, mood: Mood) -> [Action] {
        guard !closing else { return [] }
        self.mood = mood
        return [.event(.failed(error))] + startClose()
    }

    private mutating func startClose() -> [Action] {
        closing = true
        var out: [Action] = []
        guard isConnected else {
            closed = true
            return [.event(.closed(mood)), .disconnect]
        }
        // A nameplate we claimed (or were allocated) is released, whether or not the peer came.
        out += sendRelease()
        if let mailbox, !closeSent {
            closeSent = true
            out.append(.send(command("close", ["mailbox": .string(mailbox), "mood": .string(mood.rawValue)])))
        }
        return out + maybeFinishClose()
    }

    private mutating func maybeFinishClose() -> [Action] {
        guard closing, !closed else { return [] }
        if releaseSent && !released { return [] }
        if closeSent && !closedByServer { return [] }
        closed = true
        return [.event(.closed(mood)), .disconnect]
    }
}

extension JSONValue {
    fileprivate func serializedBytesForVersion() -> [UInt8] {
        JSONValue.object(["app_versions": self]).serializedBytes()
    }
}
