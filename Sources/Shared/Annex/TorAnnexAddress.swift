/// A git-annex tor-annex address, `tor-annex::ONION.onion:PORT`, optionally with the
/// token a peer presents, `tor-annex::ONION.onion:PORT:TOKEN` (as `git annex p2p
/// --gen-addresses` prints it). The one place annexd parses, validates and formats them.
public struct TorAnnexAddress: Hashable, Sendable, CustomStringConvertible {
    public static let scheme = "tor-annex::"

    /// A v3 onion address, lowercase, ending in `.onion`.
    public let onion: String
    public let port: Int
    /// The token, when the text carried one.
    public let token: AuthToken?

    /// Whether a token must, may or must not follow the port.
    public enum TokenRule: Sendable {
        case required, optional, forbidden
    }

    public struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        /// What is wrong, e.g. "it does not start with tor-annex::".
        public let problem: String
        public init(problem: String) { self.problem = problem }
        public var description: String { problem }
    }

    /// An address annexd made itself (its own onion and port); `onion` must be valid.
    public init(onion: String, port: Int, token: AuthToken? = nil) {
        precondition(OnionKey.isValidAddress(onion) && (1...65535).contains(port), "not a tor-annex address: \(onion):\(port)")
        self.onion = onion.lowercased()
        self.port = port
        self.token = token
    }

    /// Parses `text` (surrounding whitespace ignored).
    public init(parsing text: String, token rule: TokenRule = .optional) throws(ParseError) {
        func bad(_ problem: String) -> ParseError { ParseError(problem: problem) }
        let trimmed = text.trimmingWhitespace
        guard trimmed.hasPrefix(Self.scheme) else { throw bad("it does not start with \(Self.scheme)") }
        let parts = trimmed.dropFirst(Self.scheme.count).split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        switch (rule, parts.count) {
        case (.required, 3), (.optional, 2), (.optional, 3), (.forbidden, 2): break
        case (.required, _): throw bad("it has \(parts.count) fields after \(Self.scheme), not 3 (ONION:PORT:TOKEN)")
        case (.forbidden, _): throw bad("it has \(parts.count) fields after \(Self.scheme), not 2 (ONION:PORT)")
        default: throw bad("it has \(parts.count) fields after \(Self.scheme), not 2 or 3")
        }
        let onion = parts[0].lowercased()
        guard onion.hasSuffix(".onion"), OnionKey.isValidAddress(onion) else { throw bad("\(parts[0].prefix(80)) is not a v3 onion address") }
        guard let port = Int(parts[1]), (1...65535).contains(port) else { throw bad("\(parts[1].prefix(20)) is not a port number") }
        var token: AuthToken?
        if parts.count == 3 {
            guard let t = AuthToken(parts[2]) else { throw bad("the token is not 128 lowercase hex characters") }
            token = t
        }
        self.onion = onion
        self.port = port
        self.token = token
    }

    /// Whether `text` is an address without a token.
    public static func isAddress(_ text: String) -> Bool {
        (try? TorAnnexAddress(parsing: text, token: .forbidden)) != nil
    }

    /// `tor-annex::ONION:PORT`: never the token.
    public var address: String { "\(Self.scheme)\(onion):\(port)" }

    /// `tor-annex::ONION:PORT:TOKEN` (secret), or the address when there is no token.
    public var addressWithToken: String { token.map { "\(address):\($0.value)" } ?? address }

    /// The address without its token.
    public var withoutToken: TorAnnexAddress { TorAnnexAddress(onion: onion, port: port) }

    public func with(token: AuthToken) -> TorAnnexAddress { TorAnnexAddress(onion: onion, port: port, token: token) }

    /// The address (the token is never printed).
    public var description: String { address }
}

extension String {
    /// Without leading and trailing spaces, tabs, CR and LF.
    var trimmingWhitespace: String {
        let ws: Set<Character> = [" ", "\t", "\r", "\n"]
        guard let first = firstIndex(where: { !ws.contains($0) }), let last = lastIndex(where: { !ws.contains($0) }) else { return "" }
        return String(self[first...last])
    }
}
