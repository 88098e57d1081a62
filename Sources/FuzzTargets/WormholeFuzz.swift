import Shared

/// Magic Wormhole: the mailbox machine on JSON from the server, SPAKE2 messages, and
/// Transit's handshake and encrypted records.
enum WormholeFuzz {
    // The first SPAKE2 test vector (Tests/SharedTests/Fixtures/wormhole-vectors.json): seeds
    // made with it carry the peer's real pake and messages sealed with the real key.
    static let appID = "lothar.com/wormhole/text-or-file-xfer"
    static let code = "4-purple-sausages"
    static let entropyA = Hex.decode("14bea0e84f0374aa69507cb0b6baf906b5aca36db7d18ef90c6f7172063d6f5d8491d6cfbd018bdcd3538adb5e80d5be87fe03ccdf04db69732ceacc2078f849")!

    /// Input: server frames, one per line. Whatever they say, the machine's output stays well
    /// formed and its promises hold: one `.closed` at most and nothing after it, app messages
    /// in phase order, `.verified` only with a key.
    @Sendable static func mailbox(_ input: UnsafeRawBufferPointer) throws(FuzzViolation) {
        var machine = MailboxMachine(.init(appID: appID, side: "aaaaaaaaaa", spakeEntropy: entropyA), randomByte: { 7 })
        var checker = MailboxChecker()
        try checker.check(machine.connected(), machine)
        guard let wormholeCode = try? WormholeCode(parsing: code) else { throw FuzzViolation("the fixed code does not parse") }
        try checker.check(machine.setCode(wormholeCode), machine)
        try checker.check(machine.send(Array("hello".utf8)), machine)
        for frame in input.pieces(separator: 10, limit: 256) {
            let wasClosed = machine.closed
            let actions = machine.received(text: frame)
            try require(!wasClosed || actions.isEmpty, "actions after the wormhole closed")
            try checker.check(actions, machine)
        }
        try checker.check(machine.close(), machine)
        try checker.check(machine.connectionLost(), machine)
    }

    struct MailboxChecker {
        var closedEvents = 0
        var nextPhase = 0

        mutating func check(_ actions: [MailboxMachine.Action], _ machine: MailboxMachine) throws(FuzzViolation) {
            for action in actions {
                try require(closedEvents == 0 || action == .disconnect, "\(action) after .closed")
                switch action {
                case .send(let json):
                    try require(json["type"]?.stringValue != nil, "a command without a type: \(json)")
                    try require((try? JSONValue(parsing: json.serializedBytes())) == json, "a command that does not parse back")
                case .event(.closed):
                    closedEvents += 1
                case .event(.message(let phase, _)):
                    try require(phase == nextPhase, "app phase \(phase) delivered, expected \(nextPhase)")
                    nextPhase += 1
                case .event(.verified), .event(.gotKey):
                    try require(machine.key?.count == 32, "\(action) without a 32-byte key")
                case .event, .disconnect:
                    break
                }
            }
        }
    }

    /// Input: a SPAKE2 message from the peer. Invalid ones are refused; a valid one gives a
    /// 32-byte key. With 64 bytes or more, the first 64 are an honest peer's entropy: both
    /// sides must then get the same key.
    @Sendable static func spake2(_ input: UnsafeRawBufferPointer) throws(FuzzViolation) {
        guard let wormholeCode = try? WormholeCode(parsing: code),
              let own = try? SPAKE2Symmetric(code: wormholeCode, appID: appID, entropy: entropyA) else {
            throw FuzzViolation("SPAKE2 does not start with the fixed vector")
        }
        let message = Array(input)
        if let key = try? own.finish(message) {
            try require(key.count == 32 && message.count == SPAKE2Symmetric.messageLength && message[0] == SPAKE2Symmetric.sideSymmetric,
                        "a key from a malformed message")
            try require((try? own.finish(message)) == key, "finish is not deterministic")
        }
        if message.count >= 64, let peer = try? SPAKE2Symmetric(code: wormholeCode, appID: appID, entropy: Array(message.prefix(64))) {
            let ours = try? own.finish(peer.outboundMessage), theirs = try? peer.finish(own.outboundMessage)
            try require(ours != nil && ours == theirs, "honest sides disagree on the key")
        }
    }

    static let transitKey = [UInt8](repeating: 0x42, count: 32)

    /// Input: a mode byte, then bytes. The handshake machine of both roles is fed the bytes
    /// (after the peer's real handshake when mode bit 1 is set); the record reader is fed
    /// records sealed with the fixed key (the bytes split at 0xFF), in odd chunks, followed
    /// by the raw bytes when mode bit 2 is set: every sealed record comes back in order, and
    /// garbage only ever ends in an error or a wait for more.
    @Sendable static func transit(_ input: UnsafeRawBufferPointer) throws(FuzzViolation) {
        guard let mode = input.first else { return }
        let bytes = Array(input.dropFirst())
        let keys = TransitKeys(transitKey: transitKey)
        for role in [TransitRole.sender, .receiver] {
            var handshake = TransitHandshake(role: role, keys: keys)
            _ = handshake.start(relaySide: mode & 8 != 0 ? "0123456789abcdef" : nil)
            let peer = role == .sender ? keys.receiverHandshake : keys.senderHandshake
            _ = handshake.received((mode & 2 != 0 ? peer : []) + bytes)
            if handshake.state == .peerVerified { _ = handshake.choose(mode & 16 != 0) }
            if handshake.state == .ready { try require(handshake.leftover.count <= bytes.count, "leftover larger than the input") }
        }

        let plaintexts = UnsafeRawBufferPointer(rebasing: input.dropFirst()).pieces(separator: 0xFF, limit: 32)
        var writer = TransitRecordWriter(key: transitKey)
        var stream = plaintexts.flatMap { writer.seal($0) }
        let garbage = mode & 4 != 0
        if garbage { stream += bytes }
        var reader = TransitRecordReader(key: transitKey, maxRecordLength: 1 << 16)
        var opened: [[UInt8]] = []
        var failed = false
        var offset = 0, size = Int(mode % 13) + 1
        feeding: while offset < stream.count {
            reader.append(stream[offset..<min(stream.count, offset + size)])
            offset += size
            size = size % 13 + 1
            while true {
                do {
                    guard let record = try reader.next() else { break }
                    opened.append(record)
                } catch {
                    failed = true
                    break feeding
                }
            }
        }
        try require(opened.count >= min(plaintexts.count, opened.count) && Array(opened.prefix(plaintexts.count)) == Array(plaintexts.prefix(opened.count)),
                    "records came back changed")
        if !garbage { try require(!failed && opened == plaintexts, "sealed records did not all come back") }
    }
}
