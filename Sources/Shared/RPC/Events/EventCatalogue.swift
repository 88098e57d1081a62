/// What the catalogue says about one event type.
public struct EventDescriptor: Sendable, Equatable {
    public let type: String
    public let summary: String
    /// The names of its own fields, in order (not the envelope's id, boot, type, time).
    public let fieldNames: [String]
    /// The `params` of the `event` notification: the envelope, then the fields.
    public let schema: JSONValue

    init(type: String, summary: String, fields: [(String, JSONValue, String)]) {
        self.type = type
        self.summary = summary
        fieldNames = fields.map(\.0)
        let envelope: [JSONSchema.Property] = [
            .property("id", Int.self, "Gapless, increasing within one boot; resume with events.subscribe {since: id}"),
            .property("boot", String.self, "This daemon run's id: ids start again at 1 after a restart"),
            .property("type", schema: JSONSchema.stringEnum([type]), "The event type"),
            .property("time", Double.self, "Seconds since the Unix epoch"),
        ]
        schema = JSONSchema.object(envelope + fields.map { .property($0.0, schema: $0.1, $0.2) }, description: summary)
    }

    /// Its entry in the OpenRPC document's `x-events`.
    public var openRPC: JSONValue {
        ["name": .string(type), "summary": .string(summary), "params": schema]
    }
}

/// Every event annexd publishes, and the notifications that carry them.
public enum EventCatalogue {
    /// Every event type, in the order docs/API.md lists them.
    public static let all: [EventDescriptor] = [
        DaemonStopping.descriptor, EventSnapshot.descriptor,
        RepoAdded.descriptor, RepoRemoved.descriptor, RepoFailed.descriptor,
        PeerInvited.descriptor, PeerRevoked.descriptor, PeerAccessChanged.descriptor,
        PeerConnected.descriptor, PeerAuthFailed.descriptor, PeerLinked.descriptor, PeerUnlinked.descriptor,
        RemoteConnected.descriptor, RemoteDisconnected.descriptor, RemoteChanged.descriptor,
        ContentReceived.descriptor, ContentSent.descriptor, ContentRemoved.descriptor,
        TransferQueued.descriptor, TransferStarted.descriptor, TransferProgress.descriptor, TransferPaused.descriptor,
        TransferResumed.descriptor, TransferFinished.descriptor, TransferFailed.descriptor, TransferCanceled.descriptor,
        SyncStarted.descriptor, SyncFinished.descriptor, SyncFailed.descriptor,
        PairCode.descriptor, PairProgress.descriptor, PairSucceeded.descriptor, PairFailed.descriptor,
        TorConnected.descriptor, TorDisconnected.descriptor, TorBootstrap.descriptor,
        TorControlSocketEnabled.descriptor, TorHiddenServiceEnabled.descriptor,
        OnionReady.descriptor, OnionFailed.descriptor,
    ]

    public static let types: Set<String> = Set(all.map(\.type))

    public static func descriptor(_ type: String) -> EventDescriptor? { all.first { $0.type == type } }

    /// The `event.overflow` notification: the subscriber fell behind and was unsubscribed.
    public static let overflowSchema = JSONSchema.object([
        .property("resume_from", Int.self, "Resubscribe with events.subscribe {since: resume_from} to continue without a gap"),
        .property("boot", String.self, "The boot the id belongs to"),
        .property("message", String.self, "What happened, for people"),
    ], description: "Sent (method event.overflow) instead of events to a subscriber that fell too far behind; it is unsubscribed")

    /// The OpenRPC document's `x-events` member: the `event` notification's params per type.
    public static var openRPC: JSONValue {
        ["notification": .string(RPCNotification.eventMethod),
         "events": .array(all.map(\.openRPC)),
         "overflow": ["notification": "event.overflow", "params": overflowSchema]]
    }
}
