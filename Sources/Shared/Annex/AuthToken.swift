/// git-annex P2P authentication tokens: 128 lowercase hex characters
/// (git-annex's P2P/Auth.hs). annexd never accepts an empty or malformed one.
public struct AuthToken: Hashable, Sendable, CustomStringConvertible {
    public let value: String

    public static let length = 128

    public init?(_ text: String) {
        guard text.utf8.count == Self.length, Hex.isLowerHex(text) else { return nil }
        value = text
    }

    /// A fresh random token (64 bytes from libsodium).
    public static func generate() -> AuthToken {
        AuthToken(Hex.encode(Sodium.randomBytes(64)))!
    }

    /// Constant-time comparison.
    public func matches(_ other: String) -> Bool {
        Sodium.constantTimeEqual(Array(value.utf8), Array(other.utf8))
    }

    public var description: String { "<token>" }
}

/// `.git/annex/creds/p2pauth`: tokens this repository accepts, one per line,
/// optionally followed by a space and the address it was made for. Lines that
/// are not a valid token (blank lines included) are kept but never accepted.
public struct P2PAuthFile: Equatable, Sendable {
    public private(set) var lines: [String]

    public init(text: String) {
        lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
    }

    public var text: String { lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n" }

    /// The valid tokens, in file order.
    public var tokens: [AuthToken] {
        lines.compactMap { line in AuthToken(String(line.prefix { $0 != " " })) }
    }

    /// Whether `candidate` is one of the valid tokens (constant time per token).
    public func accepts(_ candidate: String) -> AuthToken? {
        guard AuthToken(candidate) != nil else { return nil }
        var found: AuthToken?
        for t in tokens where t.matches(candidate) { found = t }
        return found
    }

    public mutating func add(_ token: AuthToken, address: String? = nil) {
        lines.append(address.map { "\(token.value) \($0)" } ?? token.value)
    }

    /// Removes every line carrying `token`; true if there was one.
    @discardableResult
    public mutating func remove(_ token: AuthToken) -> Bool {
        let before = lines.count
        lines.removeAll { String($0.prefix { $0 != " " }) == token.value }
        return lines.count != before
    }
}
