// Events about peers (invited repositories) and remotes (linked ones).

/// peer.invited and peer.access_changed: a peer and its access level.
public struct PeerAccessEvent<Kind: EventKind>: RepoEvent {
    public static var type: String { Kind.type }
    public static var summary: String { Kind.summary }
    public static var fields: [EventField<Self>] {
        [.init("peer", \.peer, "The peer's name"), .init("access", \.access, "read-write or read-only")]
    }
    public var repo: EventRepo
    public var peer: String
    public var access: String
    public init(repo: EventRepo, peer: String, access: String) {
        self.repo = repo
        self.peer = peer
        self.access = access
    }
}

public enum PeerWasInvited: EventKind {
    public static let type = "peer.invited"
    public static let summary = "A token was made for a new peer (peer.invite)"
}
public enum PeerAccessWasChanged: EventKind {
    public static let type = "peer.access_changed"
    public static let summary = "A peer's access level changed (peer.setAccess)"
}
public typealias PeerInvited = PeerAccessEvent<PeerWasInvited>
public typealias PeerAccessChanged = PeerAccessEvent<PeerAccessWasChanged>

public struct PeerRevoked: RepoEvent {
    public static let type = "peer.revoked"
    public static let summary = "A peer's token was revoked: it can no longer connect"
    public static let fields: [EventField<Self>] = [.init("peer", \.peer, "The peer's name")]
    public var repo: EventRepo
    public var peer: String
    public init(repo: EventRepo, peer: String) {
        self.repo = repo
        self.peer = peer
    }
}

public struct PeerConnected: RepoEvent {
    public static let type = "peer.connected"
    public static let summary = "A peer connected to this repository and authenticated"
    public static let fields: [EventField<Self>] = [
        .init("client_uuid", \.clientUUID, "The connecting repository's UUID, as it claims"),
        .init("peer", \.peer, "The name the peer's invitation was made for (peer.list), or null for a token annexd did not make"),
    ]
    public var repo: EventRepo
    public var clientUUID: String
    public var peer: String?
    public init(repo: EventRepo, clientUUID: String, peer: String? = nil) {
        self.repo = repo
        self.clientUUID = clientUUID
        self.peer = peer
    }
}

public struct PeerAuthFailed: RepoEvent {
    public static let type = "peer.auth_failed"
    public static let summary = "A connection to this repository presented a token it does not accept"
    public static let fields: [EventField<Self>] = [
        .init("client_uuid", \.clientUUID, "The connecting repository's UUID, as it claims"),
    ]
    public var repo: EventRepo
    public var clientUUID: String
    public init(repo: EventRepo, clientUUID: String) {
        self.repo = repo
        self.clientUUID = clientUUID
    }
}

public struct PeerLinked: RepoEvent {
    public static let type = "peer.linked"
    public static let summary = "A remote was added for a peer's repository after authenticating to it (peer.link, pairing)"
    public static let fields: [EventField<Self>] = [
        .init("remote", \.remote, "The git remote's name"),
        .init("remote_uuid", \.remoteUUID, "The peer repository's UUID"),
        .init("address", \.address, "tor-annex::ONION:PORT of the peer (no token)"),
    ]
    public var repo: EventRepo
    public var remote: String
    public var remoteUUID: String
    public var address: String
    public init(repo: EventRepo, remote: String, remoteUUID: String, address: String) {
        self.repo = repo
        self.remote = remote
        self.remoteUUID = remoteUUID
        self.address = address
    }
}

public struct PeerUnlinked: RepoEvent {
    public static let type = "peer.unlinked"
    public static let summary = "A tor-annex remote was removed (remote.remove)"
    public static let fields: [EventField<Self>] = [.init("remote", \.remote, "The git remote's name")]
    public var repo: EventRepo
    public var remote: String
    public init(repo: EventRepo, remote: String) {
        self.repo = repo
        self.remote = remote
    }
}
