/// Transit, magic-wormhole's bulk-data connection (`wormhole/transit.py`), without I/O:
/// the handshake bytes, a per-connection handshake machine, and the encrypted record framing.
///
/// Roles are the Transit roles (file sender / file receiver), not who connected.

/// The keys and fixed strings derived from the transit key (`WormholeKeys.transitKey`).
public struct TransitKeys: Sendable, Equatable {
    public let transitKey: [UInt8]

    public init(transitKey: [UInt8]) { self.transitKey = transitKey }

    /// `transit sender HEX ready\n\n` (87 bytes).
    public var senderHandshake: [UInt8] {
        Array("transit sender ".utf8) + Array(Hex.encode(derive("transit_sender")).utf8) + Array(" ready\n\n".utf8)
    }

    /// `transit receiver HEX ready\n\n` (89 bytes).
    public var receiverHandshake: [UInt8] {
        Array("transit receiver ".utf8) + Array(Hex.encode(derive("transit_receiver")).utf8) + Array(" ready\n\n".utf8)
    }

    /// `please relay HEX for side SIDE16\n`: the first line on a transit relay connection.
    /// `side` is the transit side, 16 lowercase hex characters (8 random bytes).
    public func relayHandshake(side: String) -> [UInt8] {
        Array("please relay ".utf8) + Array(Hex.encode(derive("transit_relay_token")).utf8)
            + Array(" for side \(side)\n".utf8)
    }

    /// Records from the file sender to the file receiver.
    public var senderRecordKey: [UInt8] { derive("transit_record_sender_key") }
    /// Records from the file receiver to the file sender (the final ack).
    public var receiverRecordKey: [UInt8] { derive("transit_record_receiver_key") }

    public static func randomSide() -> String { Hex.encode(Sodium.randomBytes(8)) }

    private func derive(_ purpose: String) -> [UInt8] {
        WormholeKeys.deriveKey(transitKey, purpose: purpose)
    }
}

public enum TransitRole: Sendable, Equatable {
    case sender
    case receiver
}

public enum TransitError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The relay answered something other than `ok\n` (e.g. `bad handshake\n`, `impatient\n`).
    case relayRefused(String)
    /// The peer's handshake bytes differ from the expected ones (another key: a wrong peer).
    case badHandshake
    /// The sender chose another connection (`nevermind\n`) or sent something other than `go\n`.
    case notChosen
    case badNonce(got: String, expected: UInt64)
    case recordTooLarge(Int)
    /// A record does not authenticate.
    case badRecord

    public var description: String {
        switch self {
        case .relayRefused(let s): "the transit relay refused the connection: \(s.debugDescription)"
        case .badHandshake: "the transit peer's handshake does not match: it is not our correspondent"
        case .notChosen: "the transit sender chose another connection"
        case .badNonce(let got, let expected): "transit record out of order: nonce \(got), expected \(expected)"
        case .recordTooLarge(let n): "transit record of \(n) bytes is larger than the limit"
        case .badRecord: "a transit record failed to decrypt: the data was altered or the key is wrong"
        }
    }
}

/// One Transit connection's negotiation, sans I/O (`transit.Connection`): optionally the relay
/// line and its `ok\n`, then both ends write their own handshake at once and read the peer's
/// exact bytes; the sender then writes `go\n` on the connection it picks (`nevermind\n`
/// elsewhere), the receiver waits for `go\n`. Bytes after that are records.
public struct TransitHandshake: Sendable {
    public enum State: Sendable, Equatable {
        case waitingForRelay
        case waitingForPeerHandshake
        /// Sender only: the peer is verified; call `choose(_:)`.
        case peerVerified
        case waitingForGo
        /// Records may flow; `leftover` holds bytes already read past the handshake.
        case ready
        case failed(TransitError)
    }

    public let role: TransitRole
    public let keys: TransitKeys
    public private(set) var state: State
    private var buffer: [UInt8] = []
    /// Bytes read past the end of the negotiation (the start of the first record).
    public private(set) var leftover: [UInt8] = []

    private var ownHandshake: [UInt8] { role == .sender ? keys.senderHandshake : keys.receiverHandshake }
    private var peerHandshake: [UInt8] { role == .sender ? keys.receiverHandshake : keys.senderHandshake }
    private static let ok = Array("ok\n".utf8)
    private static let go = Array("go\n".utf8)
    public static let nevermind = Array("nevermind\n".utf8)

    public init(role: TransitRole, keys: TransitKeys) {
        self.role = role
        self.keys = keys
        state = .waitingForPeerHandshake
    }

    /// What to write as soon as the TCP connection is up. `relaySide` (the transit side) for a
    /// connection to a relay: the relay line goes first and nothing else until its `ok\n`.
    public mutating func start(relaySide: String? = nil) -> [UInt8] {
        if let relaySide {
            state = .waitingForRelay
            return keys.relayHandshake(side: relaySide)
        }
        state = .waitingForPeerHandshake
        return ownHandshake
    }

    /// Bytes read from the connection; returns bytes to write.
    public mutating func received(_ bytes: some Collection<UInt8>) -> [UInt8] {
        buffer += bytes
        var out: [UInt8] = []
        while true {
            switch state {
            case .waitingForRelay:
                guard let line = takeLine() else { return out }
                guard line == Self.ok else {
                    state = .failed(.relayRefused(String(decoding: line, as: UTF8.self)))
                    return out
                }
                state = .waitingForPeerHandshake
                out += ownHandshake
            case .waitingForPeerHandshake:
                let expected = peerHandshake
                // Any divergence, even before the whole handshake arrived, ends the attempt.
                guard buffer.starts(with: expected.prefix(buffer.count)) else {
                    state = .failed(.badHandshake)
                    return out
                }
                guard buffer.count >= expected.count else { return out }
                buffer.removeFirst(expected.count)
                state = role == .sender ? .peerVerified : .waitingForGo
            case .waitingForGo:
                let go = Self.go
                guard buffer.starts(with: go.prefix(buffer.count)) else {
                    state = .failed(.notChosen)
                    return out
                }
                guard buffer.count >= go.count else { return out }
                buffer.removeFirst(go.count)
                leftover = buffer
                buffer = []
                state = .ready
            case .peerVerified, .ready, .failed:
                if state == .ready { leftover += buffer; buffer = [] }
                return out
            }
        }
    }

    /// Sender: this connection won (`go\n`, records follow) or lost (`nevermind\n`, then close).
    public mutating func choose(_ winner: Bool) -> [UInt8] {
        guard role == .sender, state == .peerVerified else { return [] }
        if winner {
            state = .ready
            leftover = buffer
            buffer = []
            return Self.go
        }
        state = .failed(.notChosen)
        return Self.nevermind
    }

    private mutating func takeLine() -> [UInt8]? {
        guard let nl = buffer.firstIndex(of: 0x0a) else {
            if buffer.count > 200 {  // no relay answer is that long
                let line = buffer
                buffer = []
                return line
            }
            return nil
        }
        let line = Array(buffer[...nl])
        buffer.removeFirst(nl + 1)
        return line
    }
}

/// Encrypts outgoing Transit records: 4-byte big-endian length, then SecretBox with a
/// 24-byte big-endian counter nonce (0, 1, 2, …).
public struct TransitRecordWriter: Sendable {
    public let key: [UInt8]
    public private(set) var nextNonce: UInt64 = 0

    public init(key: [UInt8]) { self.key = key }

    public mutating func seal(_ plaintext: [UInt8]) -> [UInt8] {
        let box = SecretBox.seal(plaintext, key: key, nonce: Self.nonce(nextNonce))
        nextNonce += 1
        let n = UInt32(box.count)
        return [UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)] + box
    }

    static func nonce(_ n: UInt64) -> [UInt8] {
        [UInt8](repeating: 0, count: 16) + (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * (7 - UInt64($0)))) }
    }
}

/// Decrypts incoming Transit records from a byte stream; refuses out-of-order nonces.
public struct TransitRecordReader: Sendable {
    public let key: [UInt8]
    public let maxRecordLength: Int
    public private(set) var nextNonce: UInt64 = 0
    private var buffer: [UInt8] = []
    private var start = 0

    public init(key: [UInt8], maxRecordLength: Int = 64 << 20) {
        self.key = key
        self.maxRecordLength = maxRecordLength
    }

    public mutating func append(_ bytes: some Collection<UInt8>) {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer += bytes
    }

    /// The next whole record's plaintext, or nil when more bytes are needed.
    public mutating func next() throws(TransitError) -> [UInt8]? {
        guard buffer.count - start >= 4 else { return nil }
        let length = buffer[start..<start + 4].reduce(0) { $0 << 8 | Int($1) }
        guard length <= maxRecordLength else { throw .recordTooLarge(length) }
        guard buffer.count - start >= 4 + length else { return nil }
        let box = Array(buffer[start + 4..<start + 4 + length])
        start += 4 + length
        guard box.count >= SecretBox.overhead else { throw .badRecord }
        let expected = TransitRecordWriter.nonce(nextNonce)
        guard Array(box[0..<SecretBox.nonceLength]) == expected else {
            throw .badNonce(got: Hex.encode(box[0..<SecretBox.nonceLength]), expected: nextNonce)
        }
        guard let plaintext = SecretBox.open(box, key: key) else { throw .badRecord }
        nextNonce += 1
        return plaintext
    }
}
