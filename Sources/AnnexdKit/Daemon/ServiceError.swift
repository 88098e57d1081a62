import Shared

/// What sort of failure a service reports; the RPC layer turns each into one JSON-RPC error
/// code (RPCServer/ErrorMapping.swift), so no service knows about JSON-RPC.
public enum FailureKind: Sendable {
    /// The caller gave something unusable (a bad name, address, code).
    case invalidArgument
    case notFound
    case alreadyExists
    /// Not possible now (a pairing already finished, an event id not yet reached).
    case invalidState
    case permissionDenied
    /// Something annexd depends on is not there (tor, a peer, the mailbox, the helper).
    case unavailable
    /// A conflicting operation is under way.
    case busy
    /// git or git-annex failed.
    case gitFailed
    /// A bug or an impossible answer.
    case internalFailure
}

/// A failure of one of the daemon's services: its kind, a stable snake_case reason, and a
/// description that says what went wrong and what to do. Each service declares its own
/// enum of these.
public protocol ServiceError: Error, Sendable, CustomStringConvertible {
    var kind: FailureKind { get }
    var reason: String { get }
    /// Values a client may act on (the peer's name, the latest event id).
    var details: JSONObject { get }
}

extension ServiceError {
    public var details: JSONObject { [:] }
}
