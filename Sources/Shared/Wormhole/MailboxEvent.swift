/// What the mailbox machine reports to the application.
public enum MailboxEvent: Sendable, Equatable {
    /// The server's welcome (may hold `motd`, `current_cli_version`, `error`).
    case welcome(JSONValue)
    case motd(String)
    /// Answer to `listNameplates`.
    case nameplates([String])
    /// The code made on an allocated nameplate: show it to the user.
    case codeAllocated(WormholeCode)
    /// The SPAKE2 key is known (not yet confirmed); the verifier can be shown (`--verify`).
    case gotKey(verifier: [UInt8])
    /// A peer message decrypted: the peer typed the same code.
    case verified
    /// The peer's `app_versions`.
    case peerVersions(JSONValue)
    /// A peer app message, in phase order.
    case message(phase: Int, body: [UInt8])
    /// The wormhole failed; `.closed` follows once the server confirmed the close.
    case failed(WormholeError)
    /// Done; the connection can be dropped.
    case closed(MailboxMachine.Mood)
}

public enum WormholeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A peer message failed to decrypt: the two sides used different codes.
    case wrongCode
    /// A third side tried to use a nameplate two sides already hold.
    case crowded
    case unwelcome(String)
    case serverError(String, original: JSONValue?)
    case badPake(String)
    case protocolError(String)
    case connectionLost
    /// Application-level failures (the peer's answer, transfer errors).
    case peerError(String)
    case timeout(String)
    /// The file transfer over Transit failed (no connection, short data, bad ack).
    case transit(String)

    public var description: String {
        switch self {
        case .wrongCode:
            "Key confirmation failed. Either you or your correspondent typed the code wrong, "
                + "or a would-be man-in-the-middle attacker guessed incorrectly. Try again with a new code."
        case .crowded:
            "the mailbox server says this nameplate is crowded: two other sides already use it; "
                + "ask the sender for a new code"
        case .unwelcome(let m): "the mailbox server refused the connection: \(m)"
        case .serverError(let m, let orig):
            "the mailbox server reported an error: \(m)" + (orig.map { " (for \($0))" } ?? "")
        case .badPake(let m): "the peer's key exchange (pake) message is unusable: \(m)"
        case .protocolError(let m): m
        case .connectionLost: "the connection to the mailbox server was lost before the wormhole finished; try again"
        case .peerError(let m): m
        case .timeout(let m): m
        case .transit(let m): "the file transfer failed: \(m)"
        }
    }
}
