/// The transfer object and its parts, shared by the daemon's transfer engine,
/// its events and its clients. Field names are the stable API.

/// A string enum carried in JSON as its raw value, with its schema listing the values.
public protocol JSONStringEnum: RawRepresentable, CaseIterable, JSONRepresentable where RawValue == String {}

extension JSONStringEnum {
    public init(json: JSONValue, path: String) throws {
        let raw = try String(json: json, path: path)
        guard let value = Self(rawValue: raw) else {
            let allowed = Self.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw JSONDecodingError(path: path, problem: "expected one of \(allowed), got \"\(raw)\"")
        }
        self = value
    }
    public var json: JSONValue { .string(rawValue) }
    public static var schema: JSONValue { JSONSchema.stringEnum(allCases.map(\.rawValue)) }
}

/// get: content comes here from a peer; put: content goes from here to a peer.
public enum TransferDirection: String, JSONStringEnum, Sendable {
    case get, put
}

public enum TransferState: String, JSONStringEnum, Sendable {
    case queued, active, paused, verifying, done, failed, canceled

    /// Nothing more will happen to it unless asked (transfer.retry).
    public var isFinal: Bool { self == .done || self == .failed || self == .canceled }
}

/// A repository at the other end of a transfer.
public struct TransferPeer: RPCResultConvertible, Equatable, Hashable {
    public var uuid: String
    /// The git remote's name in this repository (nil when the peer has no remote here).
    public var name: String?
    public init(uuid: String, name: String?) { self.uuid = uuid; self.name = name }
    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        uuid = try r.required("uuid")
        name = try r.optional("name")
        try r.finish()
    }
    public var json: JSONValue { .object(JSONObject(["uuid": uuid.json, "name": name?.json])) }
    public static let schema = JSONSchema.object([
        .property("uuid", String.self, "The peer repository's git-annex UUID"),
        .property("name", String.self, required: false, "Its git remote name in this repository"),
    ])
}

/// Why a transfer (or a drop) failed: a stable code for programs, a message for people.
public struct TransferFailure: RPCResultConvertible, Equatable, Error {
    /// peer_unreachable, auth_failed, not_on_peer, no_peer, verify_failed, disk_full, stalled,
    /// canceled, unsafe_drop, protocol_error, in_progress, io_error, not_annexed
    public var code: String
    public var message: String
    public init(code: String, message: String) { self.code = code; self.message = message }
    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        code = try r.required("code")
        message = try r.required("message")
        try r.finish()
    }
    public var json: JSONValue { .object(["code": code.json, "message": message.json]) }
    public static let schema = JSONSchema.object([
        .property("code", String.self, "Stable reason: peer_unreachable, auth_failed, not_on_peer, no_peer, verify_failed, disk_full, stalled, canceled, unsafe_drop, protocol_error, in_progress, io_error, not_annexed"),
        .property("message", String.self, "What went wrong and what to do, for people"),
    ])
}

/// One transfer: a key moving between a repository and a peer. A get is identified by
/// (repository, key): content is fetched once, from whichever peer has it. A put is
/// identified by (repository, peer, key).
public struct TransferInfo: RPCResultConvertible, Equatable {
    public var id: String
    /// Path of the repository.
    public var repo: String
    public var direction: TransferDirection
    /// The peer it moves from (get) or to (put); for a get not yet started, the first candidate.
    public var peer: TransferPeer?
    public var key: String
    /// The file it was asked for by (relative to the repository), if any.
    public var file: String?
    public var size: Int64?
    public var state: TransferState
    /// Bytes of the content present on the receiving side (including what a resume kept).
    public var bytes: Int64
    /// Where the current attempt started (a kept partial's size), 0 for a fresh start.
    public var resumedFrom: Int64
    /// Bytes per second over the last few seconds (0 when not moving).
    public var rate: Double
    /// Seconds until done at the current rate (nil when unknown).
    public var eta: Double?
    /// Attempts made so far (1 while the first runs).
    public var attempt: Int
    /// When the next attempt starts (Unix seconds), while waiting to retry.
    public var nextRetry: Double?
    public var error: TransferFailure?
    /// When it was asked for (Unix seconds).
    public var queuedAt: Double

    public init(id: String, repo: String, direction: TransferDirection, peer: TransferPeer?, key: String, file: String?,
                size: Int64?, state: TransferState = .queued, bytes: Int64 = 0, resumedFrom: Int64 = 0, rate: Double = 0,
                eta: Double? = nil, attempt: Int = 0, nextRetry: Double? = nil, error: TransferFailure? = nil, queuedAt: Double) {
        self.id = id; self.repo = repo; self.direction = direction; self.peer = peer; self.key = key; self.file = file
        self.size = size; self.state = state; self.bytes = bytes; self.resumedFrom = resumedFrom; self.rate = rate
        self.eta = eta; self.attempt = attempt; self.nextRetry = nextRetry; self.error = error; self.queuedAt = queuedAt
    }

    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        id = try r.required("id")
        repo = try r.required("repo")
        direction = try r.required("direction")
        peer = try r.optional("peer")
        key = try r.required("key")
        file = try r.optional("file")
        size = try r.optional("size")
        state = try r.required("state")
        bytes = try r.required("bytes")
        resumedFrom = try r.required("resumed_from")
        rate = try r.required("rate")
        eta = try r.optional("eta")
        attempt = try r.required("attempt")
        nextRetry = try r.optional("next_retry")
        error = try r.optional("error")
        queuedAt = try r.required("queued_at")
        try r.finish()
    }

    public var json: JSONValue {
        .object(JSONObject([
            "id": id.json, "repo": repo.json, "direction": direction.json, "peer": peer?.json, "key": key.json,
            "file": file?.json, "size": size?.json, "state": state.json, "bytes": bytes.json,
            "resumed_from": resumedFrom.json, "rate": rate.json, "eta": eta?.json, "attempt": attempt.json,
            "next_retry": nextRetry?.json, "error": error?.json, "queued_at": queuedAt.json,
        ]))
    }

    public static let schema = JSONSchema.object([
        .property("id", String.self, "Stable id (asking for the same transfer again returns it)"),
        .property("repo", String.self, "Path of the repository"),
        .property("direction", TransferDirection.self, "get: from a peer to here; put: from here to a peer"),
        .property("peer", TransferPeer.self, required: false, "The peer it moves from (get) or to (put)"),
        .property("key", String.self, "git-annex key"),
        .property("file", String.self, required: false, "The file it was asked for by, relative to the repository"),
        .property("size", Int64.self, required: false, "Size in bytes, when the key says"),
        .property("state", TransferState.self),
        .property("bytes", Int64.self, "Bytes on the receiving side so far"),
        .property("resumed_from", Int64.self, "Offset the current attempt resumed from (0: fresh start)"),
        .property("rate", Double.self, "Bytes per second recently"),
        .property("eta", Double.self, required: false, "Seconds left at the current rate"),
        .property("attempt", Int.self, "Attempts so far"),
        .property("next_retry", Double.self, required: false, "Unix time of the next attempt, while waiting to retry"),
        .property("error", TransferFailure.self, required: false, "Why the last attempt failed"),
        .property("queued_at", Double.self, "Unix time it was asked for"),
    ])
}
