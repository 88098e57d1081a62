#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Shared
import Synchronization

/// `sync.run`: git-level sync of a repository with its tor-annex remotes, as `git annex sync
/// --no-content` does it, git reaching the remotes through annexd's tor (`GitOverTor`) and
/// git-annex doing the pulling and merging (`GitSync`). Syncs of one repository run one after
/// another. A peer that fails gets its own error; only a repository that cannot be opened
/// fails the sync.
public final class SyncService: Sendable {
    public enum SyncError: ServiceError {
        case unknownPeer(name: String, repo: String)
        case noPeers(repo: String)
        case failed(repo: String, why: String)

        public var kind: FailureKind {
            switch self {
            case .unknownPeer: .notFound
            case .noPeers: .invalidState
            case .failed: .gitFailed
            }
        }
        public var reason: String {
            switch self {
            case .unknownPeer: "remote_not_found"
            case .noPeers: "no_peers"
            case .failed: "sync_failed"
            }
        }
        public var description: String {
            switch self {
            case .unknownPeer(let name, let repo):
                "params.peers: \(repo) has no tor-annex remote named or with UUID \(name); `annex-cli remote list` shows them"
            case .noPeers(let repo):
                "\(repo) has no tor-annex remote to sync with (remotes set annex-ignore or annex-sync=false are left out): link one with annex-cli remote add or pair"
            case .failed(_, let why): why
            }
        }
    }

    let repos: RepositoryService
    let linking: LinkingService
    let dialer: PeerDialer
    let events: EventLog
    /// The annexd executable git runs to reach a peer (`annexd git-connect`).
    let executable: String
    /// The content part (`content: true`): the plan, carried out.
    let content: ContentSyncService
    /// One lock per repository UUID: its syncs run one at a time.
    private let locks = Mutex<[String: NSLock]>([:])

    init(repos: RepositoryService, linking: LinkingService, dialer: PeerDialer, events: EventLog, executable: String,
         content: ContentSyncService) {
        self.content = content
        self.repos = repos
        self.linking = linking
        self.dialer = dialer
        self.events = events
        self.executable = executable
    }

    public func run(_ p: SyncRun.Params) async throws -> SyncRun.Result {
        let repo = try repos.lookup(p.repo)
        let chosen = try Self.remotes(of: repo, named: p.peers, linking: linking)
        guard !chosen.isEmpty else { throw SyncError.noPeers(repo: repo.path) }
        let direction = p.direction ?? .both
        let transport = GitOverTor(annexd: executable, socks: await dialer.socks())
        let lock = locks.withLock { $0[repo.uuid, default: NSLock()] }
        let eventRepo = RepositoryService.eventRepo(repo)
        let events = self.events
        var result = try await Blocking.run {
            lock.lock()
            defer { lock.unlock() }
            events.publish(SyncStarted(repo: eventRepo, peers: chosen.map(\.name)))
            do { return Self.sync(GitSync(repo: try AnnexRepo(path: repo.path), transport: transport), chosen, direction) } catch {
                events.publish(SyncFailed(repo: eventRepo, reason: "\(error)"))
                throw SyncError.failed(repo: repo.path, why: "\(error)")
            }
        }
        if p.content == true {
            // Content with the peers the git-level sync reached.
            let reached = zip(chosen, result.peers).compactMap { remote, r in
                r.error == nil ? remote.uuid.map { TransferPeer(uuid: $0, name: remote.name) } : nil
            }
            do {
                result.content = try await content.sync(repo, peers: reached, direction: direction)
            } catch {
                events.publish(SyncFailed(repo: eventRepo, reason: "content: \(error)"))
                throw error
            }
        }
        let c = result.content
        events.publish(SyncFinished(repo: eventRepo, merged: result.merged, gets: c?.gets ?? 0, puts: c?.puts ?? 0,
                                    drops: c?.drops ?? 0, peers: result.peers))
        return result
    }

    /// Pull from each (git-annex fetches and merges), then push to each.
    private static func sync(_ git: GitSync, _ remotes: [RemoteInfo], _ direction: SyncDirection) -> SyncRun.Result {
        var results = remotes.map { SyncPeerResult(uuid: $0.uuid, name: $0.name) }
        var merged = false
        if direction.pulls {
            let before = git.heads()
            for i in results.indices {
                do { results[i].pulled = try git.pull(results[i].name) } catch { results[i].error = error }
            }
            merged = git.heads() != before
        }
        let branch = git.currentBranch()
        if direction.pushes {
            for i in results.indices where results[i].error == nil {
                do { results[i].pushed = try git.push(results[i].name, branch: branch) } catch { results[i].error = error }
            }
        }
        return SyncRun.Result(peers: results, merged: merged)
    }

    /// The remotes a sync of `repo` uses (`SyncRules.select`): those named, else all that sync.
    static func remotes(of repo: Registry.Repo, named: [String]?, linking: LinkingService) throws -> [RemoteInfo] {
        do { return try SyncRules.select(remoteSettings(linking.remotes(of: repo), repo: repo), named: named) } catch {
            guard case .unknown(let name) = error else { throw error }
            throw SyncError.unknownPeer(name: name, repo: repo.path)
        }
    }

    /// The same as transfer peers: those with a known UUID (content goes by UUID).
    static func peers(of repo: Registry.Repo, named: [String]?, linking: LinkingService) throws -> [TransferPeer] {
        try remotes(of: repo, named: named, linking: linking).compactMap { r in r.uuid.map { TransferPeer(uuid: $0, name: r.name) } }
    }

    /// The remotes with the settings that leave them out of a sync (read as the watcher reads them).
    static func remoteSettings(_ remotes: [RemoteInfo], repo: Registry.Repo) -> [SyncRules.Remote] {
        let git = WatchGitConfig.read(repo.path)
        return remotes.map {
            SyncRules.Remote(info: $0, ignored: git.remoteIgnore[$0.name.lowercased()] == true,
                             syncDisabled: git.remoteSync[$0.name.lowercased()] == false)
        }
    }
}
