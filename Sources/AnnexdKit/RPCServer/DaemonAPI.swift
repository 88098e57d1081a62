import Shared

/// The RPC table: each method's params become a service call, its result the reply. Nothing
/// here decides anything; errors are mapped in ErrorMapping.swift.
enum DaemonAPI {
    static func dispatcher(_ daemon: Daemon) -> RPCDispatcher<RPCCaller> {
        let repos = daemon.repos, peers = daemon.peers, linking = daemon.linking
        let pairing = daemon.pairing, torEnable = daemon.torEnable
        var d = RPCDispatcher<RPCCaller>(version: AnnexdAPI.version, extensions: AnnexdAPI.extensions)

        d.registerInline(DaemonStatusMethod.self) { _, _ in daemon.status() }
        d.on(DaemonShutdown.self) { _, caller in
            caller.connection.afterReply { daemon.requestShutdown() }
            return RPCEmptyResult()
        }

        d.on(RepoAdd.self) { p, _ in try await repos.add(path: p.path) }
        let watch = daemon.watch
        d.on(RepoList.self) { _, _ in RepoList.Result(repos: try repos.list()) }
        d.on(RepoInfoMethod.self) { p, _ in
            let repo = try repos.lookup(p.repo)
            return try await Blocking.run { try withSettings(repos.info(repo), repo, watch) }
        }
        d.on(RepoSet.self) { p, _ in
            let repo = try repos.lookup(p.repo)
            return try await Blocking.run { try watch.set(repo, watch: p.watch, syncContent: p.syncContent) }
        }
        d.on(RepoRemove.self) { p, _ in try await repos.remove(try repos.lookup(p.repo)) }

        d.on(PeerInvite.self) { p, _ in
            let (address, peer) = try peers.invite(p.repo, name: p.name, access: PeerAccess(rawValue: p.access) ?? .readWrite)
            return PeerInvite.Result(address: address.addressWithToken, peer: peer)
        }
        d.on(PeerList.self) { p, _ in PeerList.Result(peers: peers.list(try repos.lookup(p.repo))) }
        d.on(PeerRevoke.self) { p, _ in try peers.revoke(p.repo, name: p.name) }
        d.on(PeerSetAccess.self) { p, _ in try peers.setAccess(p.repo, name: p.name, access: PeerAccess(rawValue: p.access) ?? .readOnly) }

        d.on(PeerLink.self) { p, _ in
            let repo = try repos.lookup(p.repo)
            let (name, address) = try LinkingService.parse(name: p.name, address: p.address)
            return try await linking.link(repo, name: name, peer: address)
        }
        d.on(RemoteListMethod.self) { p, _ in RemoteListMethod.Result(remotes: linking.remotes(of: try repos.lookup(p.repo))) }
        d.on(RemoteRemove.self) { p, _ in try linking.unlink(try repos.lookup(p.repo), name: p.name) }

        d.on(EventsSubscribe.self) { p, caller in try EventSubscriptions.subscribe(p, caller, daemon) }

        d.on(TorStatusMethod.self) { _, _ in await daemon.torStatus() }
        d.on(TorEnableSystem.self) { p, _ in
            if let repo = p.repo { return try await torEnable.enableHiddenService(repo) }
            return try await torEnable.enableControlSocket(group: p.group)
        }

        d.on(PairStart.self) { p, _ in
            let started = try await pairing.start(p.repo, name: p.name, timeout: p.timeout)
            return PairStart.Result(id: started.id, code: started.code, name: started.name)
        }
        d.on(PairSubmit.self) { p, _ in PairSubmit.Result(id: p.id, remote: try await pairing.submit(id: p.id, code: p.code)) }
        d.on(PairCancel.self) { p, _ in
            try pairing.cancel(id: p.id)
            return RPCEmptyResult()
        }
        d.on(ContentDrop.self) { p, _ in
            ContentDrop.Result(results: try await daemon.drops.drop(try repos.lookup(p.repo), paths: p.paths ?? [], keys: p.keys ?? [], from: p.from))
        }
        d.on(SyncRun.self) { p, _ in try await daemon.sync.run(p) }
        d.on(SyncPlanMethod.self) { p, _ in try await daemon.contentSync.plan(p) }
        registerTransfers(&d, daemon.transfers)
        return d
    }

    private static func withSettings(_ info: RepoInfo, _ repo: Registry.Repo, _ watch: RemoteWatchService) -> RepoInfo {
        var info = info
        info.settings = watch.settings(of: repo)
        return info
    }

    private static func registerTransfers(_ d: inout RPCDispatcher<RPCCaller>, _ transfers: TransferService) {
        d.on(TransferStart.self) { p, _ in try await transfers.start(p) }
        d.on(TransferList.self) { p, _ in try transfers.list(p) }
        d.on(TransferGet.self) { p, _ in try transfers.get(id: p.id) }
        d.on(TransferPause.self) { p, _ in try transfers.act(.pause, p) }
        d.on(TransferResume.self) { p, _ in try transfers.act(.resume, p) }
        d.on(TransferCancel.self) { p, _ in try transfers.act(.cancel, p) }
        d.on(TransferRetry.self) { p, _ in try transfers.act(.retry, p) }
        d.on(SettingsGet.self) { _, _ in try await Blocking.run { transfers.currentSettings() } }
        d.on(SettingsSet.self) { p, _ in try transfers.settings.update(p) }
    }
}
