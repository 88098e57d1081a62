/// The name of a peer (an invited or paired repository) and of the git remote annexd adds for
/// one: one rule for both, so a paired peer's name is always usable as a remote name.
public struct PeerName: Hashable, Sendable, CustomStringConvertible, Comparable {
    public static let maxLength = 64
    public let value: String

    public struct InvalidName: Error, Equatable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String {
            "\(name.prefix(80).debugDescription) is not a usable name: use 1 to \(PeerName.maxLength) letters, digits, '-', '_' or '.', not starting with '.' or '-'"
        }
    }

    /// Letters and digits (ASCII), '-', '_' and '.'; 1 to 64 characters; not starting with
    /// '.' or '-' (git refuses such remote names, and they read as options).
    public init(_ text: String) throws(InvalidName) {
        guard Self.isValid(text) else { throw InvalidName(name: text) }
        value = text
    }

    public static func isValid(_ text: String) -> Bool {
        guard let first = text.utf8.first, first != UInt8(ascii: "."), first != UInt8(ascii: "-"),
              text.utf8.count <= maxLength else { return false }
        return text.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x5F || c == 0x2E
        }
    }

    /// git-annex's `unusedPeerRemoteName`: the first of peer1, peer2, … not in `taken`.
    public static func unused(among taken: Set<String>) -> PeerName {
        let name = (1...).lazy.map { "peer\($0)" }.first { !taken.contains($0) }!
        return PeerName(unchecked: name)
    }

    private init(unchecked: String) { value = unchecked }

    public var description: String { value }
    public static func < (a: PeerName, b: PeerName) -> Bool { a.value < b.value }
}
