/// Pairing with another repository through Magic Wormhole, as `git annex p2p --pair` does:
/// each side sends its half token and addresses under its own code and receives the other's
/// under the code the user types in; then both store the joined token and link to each other.

public enum PairStart: RPCMethod {
    public static let method = "pair.start"
    public static let summary = "Start pairing a repository with another one (annexd or `git annex p2p --pair`): returns this side's code to show to the other side"
    public struct Params: RPCParams, Equatable {
        public var repo: String
        public var name: String?
        public var timeout: Int?
        public init(repo: String, name: String? = nil, timeout: Int? = nil) {
            self.repo = repo; self.name = name; self.timeout = timeout
        }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            repo = try r.required("repo")
            name = try r.optional("name")
            timeout = try r.optional("timeout")
            try r.finish()
            if let timeout, timeout < 1 { throw RPCError.invalidParams(reason: "invalid_timeout", "params.timeout: at least 1 second") }
        }
        public var json: JSONValue { .object(JSONObject(["repo": repo.json, "name": name?.json, "timeout": timeout?.json])) }
        public static let schema = JSONSchema.object([
            .property("repo", String.self, "Path (or UUID) of a registered repository"),
            .property("name", String.self, required: false, "Name of the git remote for the other side, and of the peer (default: peerN, as git-annex)"),
            .property("timeout", Int.self, required: false, "Seconds the whole pairing may take (default 600)"),
        ])
    }
    public struct Result: RPCResultConvertible, Equatable {
        public var id: String
        public var code: String
        public var name: String
        public init(id: String, code: String, name: String) { self.id = id; self.code = code; self.name = name }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            id = try r.required("id")
            code = try r.required("code")
            name = try r.required("name")
            try r.finish()
        }
        public var json: JSONValue { .object(["id": id.json, "code": code.json, "name": name.json]) }
        public static let schema = JSONSchema.object([
            .property("id", String.self, "The pairing session, for pair.submit and pair.cancel"),
            .property("code", String.self, "This side's pairing code (NAMEPLATE-word-word): the other side types it in"),
            .property("name", String.self, "Name the other side gets as remote and peer"),
        ])
    }
}

public struct PairSelector: RPCParams, Equatable {
    public var id: String
    public init(id: String) { self.id = id }
    public init(json: JSONValue, path at: String) throws {
        var r = try JSONObjectReader(json, path: at)
        id = try r.required("id")
        try r.finish()
    }
    public var json: JSONValue { .object(["id": id.json]) }
    public static let schema = JSONSchema.object([.property("id", String.self, "The pairing session from pair.start")])
}

public enum PairSubmit: RPCMethod {
    public static let method = "pair.submit"
    public static let summary = "Give the other side's code; answers when pairing succeeded (tokens stored, remote linked) or failed"
    public struct Params: RPCParams, Equatable {
        public var id: String
        public var code: String
        public init(id: String, code: String) { self.id = id; self.code = code }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            id = try r.required("id")
            code = try r.required("code")
            try r.finish()
        }
        public var json: JSONValue { .object(["id": id.json, "code": code.json]) }
        public static let schema = JSONSchema.object([
            .property("id", String.self, "The pairing session from pair.start"),
            .property("code", String.self, "The other side's pairing code"),
        ])
    }
    public struct Result: RPCResultConvertible, Equatable {
        public var id: String
        public var remote: RemoteInfo
        public init(id: String, remote: RemoteInfo) { self.id = id; self.remote = remote }
        public init(json: JSONValue, path at: String) throws {
            var r = try JSONObjectReader(json, path: at)
            id = try r.required("id")
            remote = try r.required("remote")
            try r.finish()
        }
        public var json: JSONValue { .object(["id": id.json, "remote": remote.json]) }
        public static let schema = JSONSchema.object([
            .property("id", String.self),
            .property("remote", RemoteInfo.self, "The git remote now linked to the other side"),
        ])
    }
}

public enum PairCancel: RPCMethod {
    public static let method = "pair.cancel"
    public static let summary = "Abandon a pairing: nothing is stored (a token already stored is removed again)"
    public typealias Params = PairSelector
    public typealias Result = RPCEmptyResult
}

/// The pairing payload git-annex exchanges (`serializePairData`): the sender's half token,
/// then one address per line, each line ended by `\n`.
public struct PairData: Sendable, Equatable {
    /// 64 lowercase hex characters.
    public var halfToken: String
    /// `tor-annex::ONION:PORT` addresses.
    public var addresses: [String]
    /// Lines of other P2P networks (`p2p-annex::…`, git-annex ≥ 10.20250828), kept but not used.
    public var otherAddresses: [String]

    public init(halfToken: String, addresses: [String], otherAddresses: [String] = []) {
        self.halfToken = halfToken
        self.addresses = addresses
        self.otherAddresses = otherAddresses
    }

    /// A fresh half token: 64 lowercase hex characters from 32 random bytes.
    public static func newHalfToken() -> String { Hex.encode(Sodium.randomBytes(32)) }

    /// Only `tor-annex::` lines: an older git-annex rejects the whole payload for any other line.
    public var serialized: [UInt8] {
        Array(([halfToken] + addresses).map { $0 + "\n" }.joined().utf8)
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case badHalfToken
        case badAddress(String)
        case noAddress

        public var description: String {
            switch self {
            case .badHalfToken: "the other side's pairing data does not start with a 64-character half token"
            case .badAddress(let l): "the other side's pairing data has a line that is not an address: \(l.prefix(120).debugDescription)"
            case .noAddress: "the other side's pairing data has no tor-annex address (does it have tor set up? `git annex enable-tor`)"
            }
        }
    }

    /// As git-annex reads it: lines split on `\n`, the first is the half token, every other
    /// non-empty line must be an address.
    public init(parsing bytes: [UInt8]) throws(ParseError) {
        let text = String(decoding: bytes, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        guard let first = lines.first, first.utf8.count == 64, first.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
            throw .badHalfToken
        }
        var tor: [String] = [], other: [String] = []
        for line in lines.dropFirst() {
            if Self.isTorAddress(line) { tor.append(line) } else if line.hasPrefix("p2p-annex::") { other.append(line) } else {
                throw .badAddress(line)
            }
        }
        guard !tor.isEmpty else { throw .noAddress }
        self.init(halfToken: first, addresses: tor, otherAddresses: other)
    }

    /// `tor-annex::ONION.onion:PORT`.
    public static func isTorAddress(_ line: String) -> Bool { TorAnnexAddress.isAddress(line) }
}
