/// Where a Transit peer can be reached: the `transit` message of magic-wormhole's file transfer
/// (`{"transit": {"abilities-v1": […], "hints-v1": […]}}`), and the `tcp:HOST:PORT` form of
/// `--transit-helper` / `WORMHOLE_TRANSIT_HELPER`.

/// One TCP endpoint (`direct-tcp-v1`).
public struct TransitEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// `tcp:HOST:PORT[:priority=FLOAT]`, IPv6 as `tcp:[::1]:PORT` (magic-wormhole's
    /// `--transit-helper`).
    public init(helper text: String) throws(TransitHintError) {
        guard text.hasPrefix("tcp:") else { throw .badHelper(text, "it does not start with tcp:") }
        var rest = Substring(text.dropFirst(4))
        let host: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw .badHelper(text, "the IPv6 address has no closing ']'") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            rest = rest[rest.index(after: close)...]
            guard rest.hasPrefix(":") else { throw .badHelper(text, "there is no :PORT after the address") }
            rest = rest.dropFirst()
        } else {
            guard let colon = rest.firstIndex(of: ":") else { throw .badHelper(text, "there is no :PORT") }
            host = rest[..<colon]
            rest = rest[rest.index(after: colon)...]
        }
        let portText = rest.prefix { $0 != ":" }
        let options = rest.dropFirst(portText.count)
        guard !host.isEmpty else { throw .badHelper(text, "there is no host") }
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw .badHelper(text, "'\(portText)' is not a port number from 1 to 65535")
        }
        guard options.isEmpty || options.hasPrefix(":priority=") else {
            throw .badHelper(text, "unknown option '\(options.dropFirst())' (only priority=N is known)")
        }
        self.init(host: String(host), port: port)
    }
}

public enum TransitHintError: Error, Equatable, Sendable, CustomStringConvertible {
    case badHelper(String, String)

    public var description: String {
        switch self {
        case .badHelper(let text, let why):
            "cannot use the transit helper '\(text)': \(why); expected tcp:HOST:PORT, like tcp:transit.magic-wormhole.io:4001"
        }
    }
}

/// The hints one side advertises: its own listening addresses and the relays it uses.
public struct TransitHints: Sendable, Equatable {
    public var direct: [TransitEndpoint]
    public var relays: [TransitEndpoint]

    public init(direct: [TransitEndpoint] = [], relays: [TransitEndpoint] = []) {
        self.direct = direct
        self.relays = relays
    }

    /// The value of the `transit` key.
    public var json: JSONValue {
        func hint(_ e: TransitEndpoint) -> JSONValue {
            ["type": "direct-tcp-v1", "priority": 0.0, "hostname": .string(e.host), "port": .int(Int64(e.port))]
        }
        var hints = direct.map(hint)
        if !relays.isEmpty {
            hints.append(["type": "relay-v1", "hints": .array(relays.map(hint))])
        }
        return ["abilities-v1": [["type": "direct-tcp-v1"], ["type": "relay-v1"]], "hints-v1": .array(hints)]
    }

    /// Reads the peer's `transit` value leniently, as magic-wormhole does: unknown hint types
    /// (`tor-tcp-v1`, future ones) and malformed entries are skipped.
    public init(json: JSONValue) {
        func endpoint(_ h: JSONValue) -> TransitEndpoint? {
            guard h["type"]?.stringValue == "direct-tcp-v1", let host = h["hostname"]?.stringValue, !host.isEmpty,
                  let port = h["port"]?.intValue, (1...65535).contains(port) else { return nil }
            return TransitEndpoint(host: host, port: Int(port))
        }
        var direct: [TransitEndpoint] = [], relays: [TransitEndpoint] = []
        for h in json["hints-v1"]?.arrayValue ?? [] {
            switch h["type"]?.stringValue {
            case "direct-tcp-v1": if let e = endpoint(h) { direct.append(e) }
            case "relay-v1": relays += (h["hints"]?.arrayValue ?? []).compactMap(endpoint)
            default: break
            }
        }
        self.init(direct: direct, relays: relays)
    }
}

/// The file-transfer application messages (`wormhole send FILE` / `wormhole receive`).
public enum FileTransferMessage {
    public static func transit(_ hints: TransitHints) -> [UInt8] {
        JSONValue.object(["transit": hints.json]).serializedBytes()
    }

    public static func offer(filename: String, size: Int) -> [UInt8] {
        JSONValue.object(["offer": ["file": ["filename": .string(filename), "filesize": .int(Int64(size))]]]).serializedBytes()
    }

    public static let fileAck: [UInt8] = JSONValue.object(["answer": ["file_ack": "ok"]]).serializedBytes()

    public static func error(_ text: String) -> [UInt8] {
        JSONValue.object(["error": .string(text)]).serializedBytes()
    }

    /// The receiver's last Transit record: `{"ack": "ok", "sha256": HEX}`.
    public static func transitAck(sha256 digest: [UInt8]) -> [UInt8] {
        JSONValue.object(["ack": "ok", "sha256": .string(Hex.encode(digest))]).serializedBytes()
    }

    /// A file name from an offer that is safe to use as a single path component.
    public static func safeFilename(_ offered: String) -> String {
        let base = offered.split(separator: "/").last.map(String.init) ?? ""
        return base.isEmpty || base == "." || base == ".." ? "received" : base
    }
}
