import Shared

/// The pure rules of a sync, as git-annex's Command/Sync.hs has them: which remotes take
/// part, which branches are merged and pushed, and what a push's porcelain output means.
enum SyncRules {
    /// A tor-annex remote with the settings that decide whether a sync uses it.
    struct Remote: Equatable, Sendable {
        var info: RemoteInfo
        /// remote.NAME.annex-ignore=true
        var ignored = false
        /// remote.NAME.annex-sync=false
        var syncDisabled = false
    }

    enum SelectionError: Error, Equatable {
        case unknown(String)
    }

    /// The remotes to sync with. Named ones (by remote name or annex-uuid) are used whatever
    /// their settings, as `git annex sync NAME` does; without names, every remote but those
    /// set annex-ignore or annex-sync=false.
    static func select(_ remotes: [Remote], named: [String]?) throws(SelectionError) -> [RemoteInfo] {
        guard let named, !named.isEmpty else {
            return remotes.filter { !$0.ignored && !$0.syncDisabled }.map(\.info)
        }
        var chosen: [RemoteInfo] = []
        for name in named {
            guard let r = remotes.first(where: { $0.info.name == name || $0.info.uuid == name }) else { throw .unknown(name) }
            if !chosen.contains(r.info) { chosen.append(r.info) }
        }
        return chosen
    }

    /// The branch checked out and the branch it stands for: for an adjusted branch
    /// (`adjusted/main(unlocked)`) that is `main`, as git-annex's origBranch.
    struct Branch: Equatable, Sendable {
        var current: String
        var original: String

        init(current: String) {
            self.current = current
            if current.hasPrefix("adjusted/"), current.hasSuffix(")"), let open = current.lastIndex(of: "(") {
                original = String(current.dropFirst("adjusted/".count)[..<open])
            } else {
                original = current
            }
        }

        var synced: String { "synced/" + original }
    }

    static let annexBranch = "git-annex"

    /// What a push sends (git-annex's pushBranch, in one `git push`): BRANCH directly (a
    /// non-bare peer refuses its checked-out branch, which is expected), BRANCH to
    /// synced/BRANCH, git-annex forced to synced/git-annex, and git-annex directly (refused
    /// when the peer's has other changes, also expected).
    static func pushRefspecs(_ branch: Branch?) -> [String] {
        var specs: [String] = []
        if let branch { specs += [branch.original, "\(branch.original):\(branch.synced)"] }
        specs += ["+\(annexBranch):synced/\(annexBranch)", annexBranch]
        return specs
    }

    /// The destination refs whose refusal fails a push.
    static func requiredDestinations(_ branch: Branch?) -> Set<String> {
        var refs: Set<String> = ["refs/heads/synced/\(annexBranch)"]
        if let branch { refs.insert("refs/heads/\(branch.synced)") }
        return refs
    }

    /// Local refs and the remote-tracking refs they are compared with to see whether a push is
    /// needed (git-annex's needpush: synced/BRANCH and git-annex).
    static func pushChecks(_ branch: Branch?, remote: String) -> [(local: String, remote: String)] {
        var checks: [(String, String)] = []
        if let branch { checks.append(("refs/heads/\(branch.original)", "refs/remotes/\(remote)/\(branch.synced)")) }
        checks.append(("refs/heads/\(annexBranch)", "refs/remotes/\(remote)/\(annexBranch)"))
        return checks
    }

    /// One ref line of `git push --porcelain`: `FLAG \t FROM:TO \t SUMMARY`.
    struct PushedRef: Equatable {
        var flag: Character
        var destination: String
        var summary: String
        /// Updated (fast-forward, forced, or new).
        var updated: Bool { flag == " " || flag == "+" || flag == "*" }
        var rejected: Bool { flag == "!" }
    }

    static func parsePorcelain(_ text: String) -> [PushedRef] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count >= 2, let flag = fields[0].first, fields[0].count == 1,
                  let colon = fields[1].lastIndex(of: ":") else { return nil }
            return PushedRef(flag: flag, destination: String(fields[1][fields[1].index(after: colon)...]),
                             summary: fields.count > 2 ? String(fields[2]) : "")
        }
    }
}
