import Shared

/// The peers a repository syncs with: its tor-annex remotes with a known UUID, minus those
/// git-annex's own config leaves out of sync (`remote.<name>.annex-ignore true`,
/// `remote.<name>.annex-sync false`), or only those asked for by name or UUID.
enum SyncPeers {
    struct UnknownPeer: ServiceError {
        let peer: String
        let repo: String
        var kind: FailureKind { .notFound }
        var reason: String { "remote_not_found" }
        var description: String {
            "\(repo) has no tor-annex remote named \(peer) or with that UUID that syncs; `annex-cli remote list` shows them (remotes with annex-ignore or annex-sync false are left alone)"
        }
    }

    static func choose(_ remotes: [RemoteInfo], asked: [String]?, repoPath: String) throws -> [TransferPeer] {
        let left = leftOut(repoPath)
        let syncing = remotes.filter { $0.uuid != nil && !left.contains($0.name) }
        guard let asked else { return syncing.map { TransferPeer(uuid: $0.uuid!, name: $0.name) } }
        return try asked.map { wanted in
            guard let r = syncing.first(where: { $0.name == wanted || $0.uuid == wanted }) else {
                throw UnknownPeer(peer: wanted, repo: repoPath)
            }
            return TransferPeer(uuid: r.uuid!, name: r.name)
        }
    }

    /// Remote names with annex-ignore set true or annex-sync set false (git's boolean spellings).
    static func leftOut(_ repoPath: String) -> Set<String> {
        let out = (try? Command.output(["git", "config", "--get-regexp", #"^remote\..*\.annex-(ignore|sync)$"#], cwd: repoPath)) ?? ""
        var names: Set<String> = []
        for line in out.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            let variable = parts[0], value = parts.count == 2 ? parts[1].lowercased() : "true"
            guard variable.hasPrefix("remote.") else { continue }
            let isTrue = ["true", "yes", "on", "1"].contains(value), isFalse = ["false", "no", "off", "0", ""].contains(value)
            if variable.hasSuffix(".annex-ignore"), isTrue {
                names.insert(String(variable.dropFirst("remote.".count).dropLast(".annex-ignore".count)))
            }
            if variable.hasSuffix(".annex-sync"), isFalse {
                names.insert(String(variable.dropFirst("remote.".count).dropLast(".annex-sync".count)))
            }
        }
        return names
    }
}
