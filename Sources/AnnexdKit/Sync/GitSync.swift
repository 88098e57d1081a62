#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Shared

/// The commands of one sync of one repository (blocking: run on a thread of its own). git
/// reaches tor-annex remotes through annexd (`GitOverTor`); pulling and merging are git-annex's
/// own (`git annex sync --no-push`). docs/ARCHITECTURE.md ("Sync") lists what runs, in order.
struct GitSync {
    let repo: AnnexRepo
    let transport: GitOverTor

    /// A peer's failure: a code (peer_unreachable, auth_failed, pull_failed, push_failed, …)
    /// and a message for people.
    typealias PeerFailure = TransferFailure

    /// The branch checked out, nil when HEAD is detached or unborn (or the repository is bare).
    func currentBranch() -> SyncRules.Branch? {
        guard !repo.isBare, let r = try? git(["symbolic-ref", "-q", "--short", "HEAD"]), r.status == 0 else { return nil }
        let name = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty, resolve("refs/heads/" + name) != nil else { return nil }
        return SyncRules.Branch(current: name)
    }

    /// How often a pull or push that failed other than by not reaching the peer is tried. Stock
    /// git-annex's server (P2P/IO.hs runRelayService) sends CONNECTDONE as soon as the git
    /// service exits, racing the thread that relays the service's last output, which is then
    /// lost: git sees "unexpected disconnect while reading sideband packet" now and then. Pull
    /// and push are idempotent, so they are tried again; a peer that cannot be reached is not.
    static let attempts = 3
    static let retriedCodes: Set<String> = ["pull_failed", "push_failed", "protocol_error"]

    /// Runs a git command that reaches a peer, trying again while it breaks off mid-stream.
    private func overTor(_ args: [String], doing what: String, code: String, before: () -> Void = {},
                         succeeded: (Command.Output) -> Bool = { $0.status == 0 }) throws(PeerFailure) -> Command.Output {
        var attempt = 1
        while true {
            before()
            let r: Command.Output
            do { r = try git(args, overTor: true) } catch {
                throw PeerFailure(code: "io_error", message: "could not run git \(args[0]): \(error)")
            }
            if succeeded(r) { return r }
            let failure = Self.failure(r, doing: what, code: code)
            guard attempt < Self.attempts, Self.retriedCodes.contains(failure.code) else { throw failure }
            attempt += 1
        }
    }

    /// Pulls from `remote` as `git annex sync --no-content --no-commit --no-push REMOTE` does
    /// (git-annex runs git fetch, through annexd here, then merges: the local synced/BRANCH,
    /// the remote's BRANCH and synced/BRANCH with its conflict resolution, the git-annex
    /// branch, and moves synced/BRANCH); true when its remote-tracking refs changed.
    /// git-annex's pull succeeds even when its fetch failed (it then merges nothing from the
    /// remote), so the fetch is judged by git's FETCH_HEAD: removed before, written only by a
    /// fetch that completed.
    func pull(_ remote: String) throws(PeerFailure) -> Bool {
        let before = refs(under: "refs/remotes/\(remote)/")
        let fetchHead = repo.gitDir + "/FETCH_HEAD"
        _ = try overTor(["annex", "sync", "--no-content", "--no-commit", "--no-push", "--quiet", remote],
                        doing: "pulling from \(remote)", code: "pull_failed", before: { unlink(fetchHead) }) { r in
            var st = stat()
            return r.status == 0 && stat(fetchHead, &st) == 0 && st.st_size > 0
        }
        return refs(under: "refs/remotes/\(remote)/") != before
    }

    /// The current branch's and the git-annex branch's commits, to see whether pulling merged.
    func heads() -> [String?] { [resolve("HEAD"), resolve("refs/heads/" + SyncRules.annexBranch)] }

    /// Pushes what git-annex's pushBranch pushes, when the remote lacks any of it; true when
    /// refs were pushed. A refused synced/ ref fails; a refused direct push is expected.
    func push(_ remote: String, branch: SyncRules.Branch?) throws(PeerFailure) -> Bool {
        let needed = SyncRules.pushChecks(branch, remote: remote).contains { check in
            guard resolve(check.local) != nil else { return false }
            return resolve(check.remote) == nil || hasCommitsMissing(from: check.remote, in: check.local)
        }
        guard needed else { return false }
        let required = SyncRules.requiredDestinations(branch)
        // Refused direct pushes make git exit non-zero: a push is complete when git reported
        // on every synced/ ref.
        let r = try overTor(["push", "--porcelain", remote] + SyncRules.pushRefspecs(branch),
                            doing: "pushing to \(remote)", code: "push_failed", succeeded: { r in
            SyncRules.parsePorcelain(r.stdout).filter { required.contains($0.destination) }.count == required.count
        })
        let refs = SyncRules.parsePorcelain(r.stdout)
        let results = refs.filter { required.contains($0.destination) }
        if let refused = results.first(where: \.rejected) {
            throw PeerFailure(code: "push_failed", message: "\(remote) refused \(refused.destination): \(refused.summary)")
        }
        return refs.contains(where: \.updated)
    }

    // MARK: git

    private func hasCommitsMissing(from base: String, in ref: String) -> Bool {
        guard resolve(ref) != nil, let r = try? git(["rev-list", "-n1", "\(base)..\(ref)", "--"]), r.status == 0 else { return false }
        return !r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
    }

    private func resolve(_ ref: String) -> String? {
        guard let r = try? git(["rev-parse", "-q", "--verify", ref + "^{commit}"]), r.status == 0 else { return nil }
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func refs(under prefix: String) -> String {
        (try? git(["for-each-ref", "--format=%(objectname) %(refname)", prefix]))?.stdout ?? ""
    }

    private func git(_ args: [String], overTor: Bool = false) throws -> Command.Output {
        try Command.run(["git"] + args, cwd: repo.path,
                        environment: overTor ? transport.environment(repo: repo.path) : nil)
    }

    /// A failed fetch or push: git-connect's own error when it left one on stderr, else git's.
    private static func failure(_ r: Command.Output, doing what: String, code: String) -> PeerFailure {
        if let f = GitConnectBridge.failure(inStderr: r.stderr) { return PeerFailure(code: f.code, message: f.message) }
        return PeerFailure(code: code, message: "\(what) failed (git exited with \(r.status)): \(lastLines(r.stderr))")
    }

    static func lastLines(_ text: String, count: Int = 3) -> String {
        text.split(separator: "\n").suffix(count).joined(separator: " / ")
    }
}
