/// One kind of event in annexd's event stream, declared once: its type, a summary, and its
/// fields. The fields list is both the JSON Schema and the encoder (each field reads one
/// stored property), so an event can carry only the fields it declares, and a publisher can
/// only publish a declared event type (`EventLog.publish` takes an `AnnexdEvent`).
///
/// Naming rule: types are `noun.verb_past` in snake_case (`peer.access_changed`), fields are
/// snake_case. `repo` is always the repository's path, with its git-annex `uuid` beside it
/// (see `RepoEvent`).
public protocol AnnexdEvent: Sendable {
    static var type: String { get }
    /// One line for the OpenRPC document and docs/API.md.
    static var summary: String { get }
    /// The fields, in order (for repository events, after `repo` and `uuid`).
    static var fields: [EventField<Self>] { get }
    /// Fields every event of a family carries before its own (`RepoEvent`: `repo`, `uuid`).
    static var leadingFields: [EventField<Self>] { get }
}

/// An event about one repository: it carries `repo` (the path) and `uuid` first.
public protocol RepoEvent: AnnexdEvent {
    var repo: EventRepo { get }
}

/// The repository an event is about.
public struct EventRepo: Sendable, Hashable {
    public var path: String
    public var uuid: String
    public init(path: String, uuid: String) {
        self.path = path
        self.uuid = uuid
    }
}

/// One declared field of an event: its name, schema, description, and how to read it.
public struct EventField<Event>: Sendable {
    public let name: String
    public let schema: JSONValue
    public let description: String
    let encode: @Sendable (Event) -> JSONValue

    /// A field read from a stored property; its schema is the property type's.
    public init<V: JSONRepresentable>(_ name: String, _ property: KeyPath<Event, V> & Sendable, _ description: String) {
        self.name = name
        schema = V.schema
        self.description = description
        encode = { $0[keyPath: property].json }
    }

    fileprivate init(name: String, schema: JSONValue, description: String, encode: @escaping @Sendable (Event) -> JSONValue) {
        self.name = name
        self.schema = schema
        self.description = description
        self.encode = encode
    }
}

extension AnnexdEvent {
    public static var leadingFields: [EventField<Self>] { [] }

    /// Every field the event carries, in order.
    public static var allFields: [EventField<Self>] { leadingFields + fields }

    /// The event's fields and their values, exactly as declared.
    public var values: JSONObject {
        JSONObject(Self.allFields.map { ($0.name, $0.encode(self)) })
    }

    /// What the catalogue says about this type.
    public static var descriptor: EventDescriptor {
        EventDescriptor(type: type, summary: summary, fields: allFields.map { ($0.name, $0.schema, $0.description) })
    }
}

extension RepoEvent {
    public static var leadingFields: [EventField<Self>] {
        [EventField(name: "repo", schema: String.schema, description: "The repository's path", encode: { .string($0.repo.path) }),
         EventField(name: "uuid", schema: String.schema, description: "The repository's git-annex UUID", encode: { .string($0.repo.uuid) })]
    }
}
