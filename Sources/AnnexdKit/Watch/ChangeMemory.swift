/// What a watched remote reported, remembered across connections: a CHANGED is news only if
/// it names something not seen before. A new connection's first CHANGED lists all the remote
/// has; a later one what its changed refs now point at, which may be a commit it reported
/// already (its synced/BRANCH moved to where BRANCH was, after a merge here was pulled back).
///
/// git-annex and annexd name commit SHAs in CHANGED, so "not seen before" is exact: a remote
/// that reconnects with nothing new triggers nothing. A server that names refs (the protocol's
/// spec; annexd before it named SHAs) does not say what they point at: a reconnect to it is
/// always news (a change made while the remote was away must not be missed).
struct ChangeMemory: Sendable, Equatable {
    /// What the remote reported since its last first answer.
    private(set) var seen: Set<String>?

    init(seen: Set<String>? = nil) { self.seen = seen }

    /// A CHANGED arrived: is it news? `first`: the connection's first answer (its full state).
    mutating func report(_ items: [String], first: Bool) -> Bool {
        defer {
            // Bounded: a long-lived connection starts its memory again from what it just said.
            if first || (seen?.count ?? 0) > Self.limit { seen = Set(items) } else { seen = (seen ?? []).union(items) }
        }
        guard let seen else { return true }
        if !items.allSatisfy(Self.isSHA) { return true }
        return !Set(items).isSubset(of: seen)
    }

    static let limit = 4096

    /// A commit SHA-1 or SHA-256 in hex.
    static func isSHA(_ s: String) -> Bool {
        (s.utf8.count == 40 || s.utf8.count == 64) && s.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}
