import Foundation
import Shared

/// `content.drop`: removes annexed content here or from a peer only when `DropSafety` says
/// enough other copies are verified, holding their locks (LOCKCONTENT on peers, a shared lock
/// here, the exclusive content lock on what is dropped here) until the removal is done and
/// the location log says so. Each key's outcome is reported; only bad params are errors.
public final class DropService: Sendable {
    public enum DropError: ServiceError {
        case unknownRemote(name: String, repo: String)
        case remoteWithoutUUID(name: String)
        case invalidKey(String, why: String)
        case gitFailed(repo: String, why: String)

        public var kind: FailureKind {
            switch self {
            case .unknownRemote: .notFound
            case .remoteWithoutUUID, .invalidKey: .invalidArgument
            case .gitFailed: .gitFailed
            }
        }
        public var reason: String {
            switch self {
            case .unknownRemote: "remote_not_found"
            case .remoteWithoutUUID: "remote_without_uuid"
            case .invalidKey: "invalid_key"
            case .gitFailed: "git_failed"
            }
        }
        public var description: String {
            switch self {
            case .unknownRemote(let name, let repo):
                "params.from: \(repo) has no tor-annex remote named or with UUID \(name); `annex-cli remote list` shows them"
            case .remoteWithoutUUID(let name):
                "params.from: remote \(name) has no annex-uuid yet: fetch from it (git fetch \(name)) or link it again"
            case .invalidKey(let key, let why): "params.keys: \(key) is not a git-annex key: \(why)"
            case .gitFailed(let repo, let why): "reading \(repo)'s location log failed: \(why)"
            }
        }
    }

    let repos: RepositoryService
    let linking: LinkingService
    let dialer: PeerDialer

    init(repos: RepositoryService, linking: LinkingService, dialer: PeerDialer) {
        self.repos = repos
        self.linking = linking
        self.dialer = dialer
    }

    public func drop(_ repo: Registry.Repo, paths: [String], keys: [String], from: String?) async throws -> [DropResult] {
        let remotes = linking.remotes(of: repo)
        let target = try Self.target(from, remotes: remotes, of: repo)
        for key in keys {
            do { _ = try AnnexKey(parsing: key) } catch { throw DropError.invalidKey(key, why: "\(error)") }
        }
        let store = try repos.objectStore(repo)
        let socks = await dialer.socks()
        let dialer = self.dialer
        return try await Blocking.run {
            let sessions = PeerSessions(annex: store.repo, remotes: remotes, dialer: dialer, socks: socks)
            defer { sessions.closeAll() }
            let inputs: DropInputs
            do { inputs = try DropInputs(repoPath: store.repo.path) } catch {
                throw DropError.gitFailed(repo: store.repo.path, why: "\(error)")
            }
            let run = DropRun(store: store, inputs: inputs, sessions: sessions, target: target)
            var results: [DropResult] = []
            for path in paths {
                let items = inputs.items(path: path)
                if items.isEmpty {
                    results.append(DropResult(key: nil, file: path, from: target, dropped: false,
                                              error: TransferFailure(code: "not_annexed", message: "\(path) is not an annexed file (nor a directory holding any) in \(store.repo.path)")))
                }
                results += items.map(run.drop)
            }
            for key in keys {
                do { results.append(run.drop(try inputs.item(key: key))) } catch {
                    throw DropError.gitFailed(repo: store.repo.path, why: "\(error)")
                }
            }
            return results
        }
    }
}

extension DropService {
    /// The UUID dropped from: this repository's, or that of its remote named (or with UUID) `from`.
    static func target(_ from: String?, remotes: [RemoteInfo], of repo: Registry.Repo) throws -> String {
        guard let from, from != repo.uuid else { return repo.uuid }
        guard let remote = remotes.first(where: { $0.name == from || $0.uuid == from }) else {
            throw DropError.unknownRemote(name: from, repo: repo.path)
        }
        guard let uuid = remote.uuid else { throw DropError.remoteWithoutUUID(name: remote.name) }
        return uuid
    }
}

/// One drop request's work on its thread: per key, verify copies, remove, log.
struct DropRun {
    let store: ObjectStore
    let inputs: DropInputs
    let sessions: PeerSessions
    /// UUID of the repository dropped from.
    let target: String

    /// How long a peer keeps a LOCKCONTENT after its connection is lost (the P2P protocol's
    /// minimum, git-annex's p2pDefaultLockContentRetentionDuration): a removal on a peer
    /// must happen within it (REMOVE-BEFORE).
    static let lockLifetime: Int64 = 600

    var here: String { store.repo.uuid }

    func drop(_ item: DropInputs.Item) -> DropResult {
        func result(_ dropped: Bool, _ code: String? = nil, _ message: String = "") -> DropResult {
            DropResult(key: item.key, file: item.file, from: target, dropped: dropped,
                       error: code.map { TransferFailure(code: $0, message: message) })
        }
        guard let key = try? AnnexKey(parsing: item.key) else {
            return result(false, "not_annexed", "\(item.key) is not a key annexd can handle")
        }
        let (num, min) = inputs.copies(for: item.file)
        var safety = DropSafety(numCopies: num, minCopies: min, target: target, locations: locations(item))
        var held = HeldLocks()
        defer { held.release(sessions) }
        let what = item.file ?? item.key

        if target == here {
            var checked = false
            let removed: Bool
            do {
                // Verified under the exclusive content lock, as git-annex's lockContentForRemoval.
                removed = try store.remove(key) {
                    checked = true
                    verify(key, &safety, &held)
                    return safety.isSafe
                }
            } catch {
                return result(false, "io_error", "removing \(what) here failed: \(error)")
            }
            if removed { return result(true) }
            if !checked {
                return store.isPresent(key)
                    ? result(false, "content_locked", "\(what) is in use here (a transfer, or a peer's LOCKCONTENT while it drops elsewhere); try again later")
                    : result(false, "not_present", "\(what) is not present here")
            }
            if case .refused(let why) = safety.verdict { return result(false, "unsafe_drop", "dropping \(what) here is unsafe: \(why)") }
            return result(false, "not_present", "\(what) went away while it was being dropped")
        }

        let name = sessions.remote(uuid: target)?.name ?? target
        guard (item.locations + item.untrusted).contains(where: { $0.uuid == target }) else {
            return result(false, "not_present", "the location log does not list \(name) as having \(what)")
        }
        let client: P2PClient
        switch sessions.client(target) {
        case .success(let c): client = c
        case .failure(let f): return result(false, f.code, f.message)
        }
        verify(key, &safety, &held)
        if case .refused(let why) = safety.verdict { return result(false, "unsafe_drop", "dropping \(what) from \(name) is unsafe: \(why)") }
        let provenAt = Clock.monotonicSeconds()
        do {
            guard try removeFromPeer(client, key, provenAt: provenAt) else {
                return result(false, "peer_refused", "\(name) did not remove \(what) (it may be in use there, or the locks held for the drop expired); try again")
            }
        } catch {
            sessions.broke(target, error)
            return result(false, "protocol_error", "removing \(what) from \(name) failed: \(error)")
        }
        do { try store.log.setPresent(key, false, in: target) } catch {
            return result(true, "io_error", "\(name) removed \(what), but recording that in the location log failed: \(error)")
        }
        return result(true)
    }

    /// REMOVE-BEFORE with peers of protocol v3 and later, so a removal delayed past the
    /// locks' lifetime does not happen; plain REMOVE with older peers (as git-annex does).
    private func removeFromPeer(_ client: P2PClient, _ key: AnnexKey, provenAt: Int64) throws -> Bool {
        guard client.version >= 3 else { return try client.remove(key) }
        let theirs = try client.getTimestamp()
        let left = provenAt + Self.lockLifetime - Clock.monotonicSeconds()
        guard left > 0 else { return false }
        return try client.removeBefore(theirs + left, key)
    }

    /// Where the log says the content is: here first, then remotes in configuration order.
    private func locations(_ item: DropInputs.Item) -> [DropSafety.Location] {
        let all = item.locations.map { ($0, false) } + item.untrusted.map { ($0, true) }
        func rank(_ uuid: String) -> Int {
            uuid == here ? -1 : sessions.remotes.firstIndex { $0.uuid == uuid } ?? sessions.remotes.count
        }
        return all.sorted { rank($0.0.uuid) < rank($1.0.uuid) }.map { entry, untrusted in
            let uuid = entry.uuid
            let name = uuid == here ? "here" : sessions.remote(uuid: uuid)?.name ?? (entry.description.isEmpty ? uuid : "\(entry.description) (\(uuid))")
            return DropSafety.Location(uuid: uuid, name: name, trust: inputs.trust(uuid, untrusted: untrusted))
        }
    }

    /// Checks copies until the drop is safe or none is left: lock each (here or with
    /// LOCKCONTENT), and when it will not lock, ask whether it is there (git-annex's fallback).
    private func verify(_ key: AnnexKey, _ safety: inout DropSafety, _ held: inout HeldLocks) {
        while let copy = safety.nextToCheck() {
            safety.record(copy, copy.uuid == here ? checkHere(key, &held) : checkPeer(copy.uuid, key, &held))
        }
    }

    private func checkHere(_ key: AnnexKey, _ held: inout HeldLocks) -> DropSafety.Outcome {
        do {
            if let (lock, _) = try store.lockPresent(key) {
                held.local.append(lock)
                return .locked
            }
        } catch {
            return .unreachable("cannot lock it here: \(error)")
        }
        return store.isPresent(key) ? .presentNotLocked : .missing
    }

    private func checkPeer(_ uuid: String, _ key: AnnexKey, _ held: inout HeldLocks) -> DropSafety.Outcome {
        let client: P2PClient
        switch sessions.client(uuid) {
        case .success(let c): client = c
        case .failure(let f): return .unreachable("\(f.code): \(f.message)")
        }
        do {
            if try client.lockContent(key) {
                held.peers.append((uuid, client))
                return .locked
            }
            return try client.checkPresent(key) ? .presentNotLocked : .missing
        } catch {
            sessions.broke(uuid, error)
            return .unreachable("protocol_error: \(error)")
        }
    }
}

/// Locks held for one key's drop, released once it is done (or refused).
struct HeldLocks {
    var local: [ContentLock] = []
    var peers: [(uuid: String, client: P2PClient)] = []

    mutating func release(_ sessions: PeerSessions) {
        for (uuid, client) in peers {
            do { try client.unlockContent() } catch { sessions.broke(uuid, error) }
        }
        for lock in local { lock.release() }
        peers = []
        local = []
    }
}
