import Shared

/// One desktop notification the notifier wants shown: what `NotifyPolicy` decides and the
/// D-Bus shell sends (org.freedesktop.Notifications Notify) or `--dry-run` prints.
public struct NotifyIntent: Equatable, Sendable {
    /// Which notification on screen this one is: a later intent with the same slot and
    /// `replaces` set updates it in place (Notify's replaces_id).
    public enum Slot: Hashable, Sendable, CustomStringConvertible {
        /// A repository's transfers: the progress notification, then the batch of finished ones.
        case transfers(repo: String)
        /// One transfer that failed for good.
        case failure(transfer: String)
        case pairing(id: String)
        /// A peer of a repository (a remote annexd dials, or a client that connected).
        case peer(repo: String, peer: String)
        case tor
        case onion(repo: String)

        public var description: String {
            switch self {
            case .transfers(let repo): return "transfers:\(repo)"
            case .failure(let id): return "failure:\(id)"
            case .pairing(let id): return "pairing:\(id)"
            case .peer(let repo, let peer): return "peer:\(repo):\(peer)"
            case .tor: return "tor"
            case .onion(let repo): return "onion:\(repo)"
            }
        }
    }

    /// The specification's urgency levels (hint `urgency`, a byte).
    public enum Urgency: UInt8, Sendable {
        case low = 0, normal = 1, critical = 2
        public var name: String {
            switch self {
            case .low: return "low"
            case .normal: return "normal"
            case .critical: return "critical"
            }
        }
    }

    /// A button (where the server has actions) and the RPC it runs in annexd.
    public struct Action: Equatable, Sendable {
        public var key: String
        public var label: String
        /// transfer.retry {ids}
        public var retryTransfers: [String]
        public init(key: String, label: String, retryTransfers: [String]) {
            self.key = key
            self.label = label
            self.retryTransfers = retryTransfers
        }
        public static func retry(_ ids: [String]) -> Action { Action(key: "retry", label: "Retry", retryTransfers: ids) }
    }

    public var slot: Slot
    /// Update the slot's notification on screen (true) or show a new one (false).
    public var replaces: Bool
    public var summary: String
    public var body: String
    public var urgency: Urgency
    /// The specification's category hint, as git-annex uses them: transfer, transfer.complete,
    /// transfer.error, network, network.connected, network.disconnected, network.error.
    public var category: String
    public var actions: [Action]

    public init(slot: Slot, replaces: Bool = true, summary: String, body: String = "", urgency: Urgency = .normal,
                category: String, actions: [Action] = []) {
        self.slot = slot
        self.replaces = replaces
        self.summary = summary
        self.body = body
        self.urgency = urgency
        self.category = category
        self.actions = actions
    }

    /// One line for --dry-run.
    public var line: String {
        var s = "[\(urgency.name) \(category)] \(summary)"
        if !body.isEmpty { s += " — " + body.replacingNewlines }
        if !actions.isEmpty { s += " {" + actions.map(\.label).joined(separator: ", ") + "}" }
        return s + " (\(replaces ? "replaces " : "new ")\(slot))"
    }

    /// One JSON object for --dry-run --json.
    public var json: JSONValue {
        .object(["slot": .string(slot.description), "replaces": .bool(replaces), "summary": .string(summary),
                 "body": .string(body), "urgency": .string(urgency.name), "category": .string(category),
                 "actions": .array(actions.map { .object(["key": .string($0.key), "label": .string($0.label),
                                                          "retry": .array($0.retryTransfers.map(JSONValue.string))]) })])
    }
}

private extension String {
    var replacingNewlines: String { split(separator: "\n", omittingEmptySubsequences: false).joined(separator: " / ") }
}
