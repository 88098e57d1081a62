/// Whether a drop is safe, decided as git-annex's verifyEnoughCopiesToDrop decides it
/// (Annex/NumCopies.hs, Types/NumCopies.hs), with no I/O: the caller asks `nextToCheck()`,
/// checks that copy (locks it, or failing that asks whether it is present), tells `record`,
/// and repeats until `nextToCheck()` is nil; then `verdict` says allowed or refused.
///
/// The copies that count (git-annex's VerifiedCopy):
/// - locked: held with a content lock (LOCKCONTENT on a peer, a shared lock here) until
///   the drop is done, so no concurrent drop can remove it;
/// - trusted: in a trusted repository on record as having it; counts without contact;
/// - present: the peer said it has it (CHECKPRESENT) but would not lock it.
/// Untrusted repositories never count; the repository dropped from never counts.
///
/// Safe when at least numcopies copies are verified and at least mincopies of them are
/// locked or trusted. git-annex requires the mincopies part only when dropping from a
/// remote; annexd requires it for a drop here too, because a peer answers CHECKPRESENT
/// from the object file alone, not seeing a drop in progress there, so two repositories
/// each dropping "because the other has it" could otherwise leave no copy at all.
public struct DropSafety: Sendable {
    public enum Trust: Sendable, Equatable { case trusted, semitrusted, untrusted }

    /// A repository the location log says has the content.
    public struct Location: Sendable, Equatable {
        public let uuid: String
        /// How people know it: "here", a remote name, or the uuid.
        public let name: String
        public let trust: Trust
        public init(uuid: String, name: String, trust: Trust) { self.uuid = uuid; self.name = name; self.trust = trust }
    }

    /// What checking one copy found.
    public enum Outcome: Sendable, Equatable {
        case locked
        /// It has the content but would not lock it (e.g. a drop is under way there).
        case presentNotLocked
        case missing
        /// Could not be asked: unreachable, refused us, or no way to reach it (`why` says).
        case unreachable(String)
    }

    public let numCopies: Int
    public let minCopies: Int
    /// The repository being dropped from.
    public let target: String

    private(set) var locked: [Location] = []
    private(set) var trusted: [Location] = []
    private(set) var present: [Location] = []
    private(set) var missing: [Location] = []
    private(set) var unreachable: [(Location, String)] = []
    private(set) var untrusted: [Location] = []
    private var toCheck: [Location]

    /// `locations`: where the log says the content is, in the order to try them (git-annex
    /// tries here first, then remotes by cost). numcopies and mincopies below 1 count as 1,
    /// as git-annex's configuredNumCopies makes them.
    public init(numCopies: Int, minCopies: Int, target: String, locations: [Location]) {
        self.numCopies = max(1, numCopies)
        self.minCopies = max(1, minCopies)
        self.target = target
        var seen: Set<String> = [target]
        var toCheck: [Location] = []
        for l in locations where seen.insert(l.uuid).inserted {
            switch l.trust {
            case .trusted: trusted.append(l)
            case .untrusted: untrusted.append(l)
            case .semitrusted: toCheck.append(l)
            }
        }
        self.toCheck = toCheck
    }

    /// Copies that count toward numcopies.
    public var verifiedCount: Int { locked.count + trusted.count + present.count }
    /// Copies that count toward mincopies: locked or trusted.
    public var fullyVerifiedCount: Int { locked.count + trusted.count }

    public var isSafe: Bool { verifiedCount >= numCopies && fullyVerifiedCount >= minCopies }

    /// The next copy to check, or nil when the drop is decided (safe already, or nothing left).
    public func nextToCheck() -> Location? {
        isSafe ? nil : toCheck.first
    }

    public mutating func record(_ location: Location, _ outcome: Outcome) {
        toCheck.removeAll { $0.uuid == location.uuid }
        switch outcome {
        case .locked: locked.append(location)
        case .presentNotLocked: present.append(location)
        case .missing: missing.append(location)
        case .unreachable(let why): unreachable.append((location, why))
        }
    }

    public enum Verdict: Sendable, Equatable {
        case allowed
        /// Why not, naming every copy and what became of it, and what to do.
        case refused(String)
    }

    public var verdict: Verdict {
        isSafe ? .allowed : .refused(refusal)
    }

    /// The copies that were locked (their locks must be held until the drop is done).
    public var lockedCopies: [Location] { locked }

    private var refusal: String {
        var parts: [String] = []
        if verifiedCount < numCopies {
            parts.append("could only verify \(verifiedCount) of the \(numCopies) other copies numcopies requires")
        }
        if fullyVerifiedCount < minCopies {
            parts.append("could lock \(fullyVerifiedCount) (locked or trusted) of the \(minCopies) copies mincopies requires")
        }
        var copies: [String] = []
        func list(_ what: String, _ ls: [Location]) {
            if !ls.isEmpty { copies.append("\(what): " + ls.map(\.name).joined(separator: ", ")) }
        }
        list("locked", locked)
        list("trusted", trusted)
        list("present but could not be locked", present)
        if !unreachable.isEmpty {
            copies.append("could not check: " + unreachable.map { "\($0.0.name) (\($0.1))" }.joined(separator: ", "))
        }
        list("no longer there", missing)
        list("untrusted (do not count)", untrusted)
        list("not checked", toCheck)
        let found = copies.isEmpty ? "no other copies are known" : copies.joined(separator: "; ")
        return parts.joined(separator: " and ") + ". " + found
            + ". Bring a peer that has it online, copy it to another repository first, or lower `git annex numcopies` / `git annex mincopies`."
    }
}
