import Foundation
import Shared

/// The content part of a sync: the plan (`sync.plan`, from ContentPlanner) for a repository
/// and the peers it syncs with, and carrying it out: gets and puts through the transfer
/// engine, then drops through the safe drop, each drop after the transfers of its key settled
/// (a put to the peer may be what makes dropping here safe, as in `git annex sync --content`).
public final class ContentSyncService: Sendable {
    let repos: RepositoryService
    let linking: LinkingService
    let transfers: TransferService
    let drops: DropService

    init(repos: RepositoryService, linking: LinkingService, transfers: TransferService, drops: DropService) {
        self.repos = repos
        self.linking = linking
        self.transfers = transfers
        self.drops = drops
    }

    public func plan(_ p: SyncPlanMethod.Params) async throws -> SyncPlan {
        let repo = try repos.lookup(p.repo)
        return try await plan(repo, peers: try SyncService.peers(of: repo, named: p.peers, linking: linking))
    }

    func plan(_ repo: Registry.Repo, peers: [TransferPeer], direction: SyncDirection = .both) async throws -> SyncPlan {
        let annex = try repos.openRepo(repo)
        return try await Blocking.run { try ContentPlanner.plan(annex, peers: peers, direction: direction) }
    }

    /// The content part of a sync with `peers`: the plan, only what `direction` moves (pull:
    /// gets and drops here; push: puts and drops from peers), carried out.
    func sync(_ repo: Registry.Repo, peers: [TransferPeer], direction: SyncDirection) async throws -> SyncContentResult {
        try await perform(try await plan(repo, peers: peers, direction: direction), in: repo)
    }

    /// Queues the plan's gets and puts, waits (up to `settleTimeout`) for the transfers of keys
    /// that are also to be dropped, then drops those.
    func perform(_ plan: SyncPlan, in repo: Registry.Repo, settleTimeout: TimeInterval = 600) async throws -> SyncContentResult {
        var outcome = SyncContentResult(transfers: [], gets: 0, puts: 0, drops: 0, refused: [])
        var started: [TransferInfo] = []
        let gets = plan.actions.filter { $0.action == .get }
        if !gets.isEmpty {
            // Any peer holding it will do (the engine ranks them and falls back); the files
            // go along so unlocked files are populated.
            let r = try await transfers.start(.init(repo: repo.path, direction: .get, paths: files(gets), keys: keys(gets)))
            started += r.transfers
            outcome.gets = r.transfers.count
        }
        for (peer, puts) in grouped(plan.actions.filter { $0.action == .put }) {
            guard let peer else { continue }
            let r = try await transfers.start(.init(repo: repo.path, direction: .put, paths: files(puts), keys: keys(puts), peer: peer.uuid))
            started += r.transfers
            outcome.puts += r.transfers.count
        }
        outcome.transfers = started.map(\.id)
        let toDrop = plan.actions.filter { $0.action == .drop }
        guard !toDrop.isEmpty else { return outcome }
        let dropKeys = Set(toDrop.map(\.key))
        try await settle(started.filter { dropKeys.contains($0.key) }.map(\.id), timeout: settleTimeout)
        for (peer, items) in grouped(toDrop) {
            let results = try await drops.drop(repo, paths: [], keys: items.map(\.key), from: peer?.uuid)
            outcome.drops += results.filter(\.dropped).count
            outcome.refused += results.filter { !$0.dropped }
        }
        return outcome
    }

    /// The actions' files, and the keys of those without one (nil when none).
    private func files(_ actions: [SyncAction]) -> [String]? {
        let f = actions.compactMap(\.file)
        return f.isEmpty ? nil : f
    }

    private func keys(_ actions: [SyncAction]) -> [String]? {
        let k = actions.filter { $0.file == nil }.map(\.key)
        return k.isEmpty ? nil : k
    }

    /// Actions by peer (nil: here), peers in the order first met.
    private func grouped(_ actions: [SyncAction]) -> [(TransferPeer?, [SyncAction])] {
        var order: [TransferPeer?] = [], by: [TransferPeer?: [SyncAction]] = [:]
        for a in actions {
            if by[a.peer] == nil { order.append(a.peer) }
            by[a.peer, default: []].append(a)
        }
        return order.map { ($0, by[$0]!) }
    }

    private func settle(_ ids: [String], timeout: TimeInterval) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        var pending = ids
        while !pending.isEmpty && Date() < deadline {
            pending = pending.filter { id in (try? transfers.get(id: id))?.isSettled == false }
            if !pending.isEmpty { try await Task.sleep(for: .milliseconds(200)) }
        }
    }
}
