import Foundation
import Shared

/// Decides what a content sync moves by asking git-annex the questions `git annex sync
/// --content` asks, through its own matching (`git annex find --want-get`, `--want-get-by`,
/// `--want-drop`, `--want-drop-by`, each with `--in`/`--not --in` on the location log), so
/// preferred content expressions, groups and `standard` mean exactly what they mean to
/// git-annex. A repository with no preferred content set wants every file and drops none, as
/// in `sync --content` (the matching options alone would say the opposite: `--want-get`
/// matches nothing then, `--want-drop` everything). Nothing is moved here: `sync.plan` shows the plan, `sync.run` hands it to the
/// transfer engine and the safe drop.
enum ContentPlanner {
    struct PlanError: ServiceError {
        let description: String
        var kind: FailureKind { .gitFailed }
        var reason: String { "plan_failed" }
    }

    /// The plan for a repository and the peers it syncs content with (each a tor-annex remote
    /// with a UUID and a name), in the order given; only what `direction` moves is asked for
    /// (pull: gets and drops here; push: puts and drops from peers).
    static func plan(_ annex: AnnexRepo, peers: [TransferPeer], direction: SyncDirection = .both) throws -> SyncPlan {
        var actions: [SyncAction] = [], unavailable: [SyncAction] = []
        let safety = "; dropped only if numcopies and mincopies are still met without this copy"
        let hereWants = direction.pulls ? try wanted("here", in: annex) : nil

        // Gets: wanted here, not here; from a peer the location log says has it.
        if direction.pulls {
            let gets = try matching((hereWants == nil ? [] : ["--want-get"]) + ["--not", "--in=here"], in: annex)
            let locations = try AnnexQueries.locations(of: gets.map(\.key), in: annex)
            let reason = wants("here", hereWants)
            for item in gets {
                let holders = Set(locations[item.key.serialized] ?? [])
                if let source = peers.first(where: { holders.contains($0.uuid) }) {
                    actions.append(action(.get, item, source, reason))
                } else {
                    unavailable.append(action(.get, item, nil, reason + "; none of the peers synced with has a copy"))
                }
            }
        }

        // Puts: here, not on the peer, and the peer wants it.
        var peerWants: [(peer: TransferPeer, ref: String, expression: String?)] = []
        if direction.pushes {
            for peer in peers {
                let ref = try remoteName(peer)
                let expression = try wanted(ref, in: annex)
                peerWants.append((peer, ref, expression))
                for item in try matching((expression == nil ? [] : ["--want-get-by=\(ref)"]) + ["--in=here", "--not", "--in=\(ref)"], in: annex) {
                    actions.append(action(.put, item, peer, wants(ref, expression)))
                }
            }
        }

        // Drops: content that is not wanted where it is (only through the safe drop).
        if let hereWants {
            for item in try matching(["--want-drop", "--in=here"], in: annex) {
                actions.append(action(.drop, item, nil, doesNotWant("here", hereWants) + safety))
            }
        }
        for (peer, ref, expression) in peerWants {
            guard let expression else { continue }
            for item in try matching(["--want-drop-by=\(ref)", "--in=\(ref)"], in: annex) {
                actions.append(action(.drop, item, peer, doesNotWant(ref, expression) + safety))
            }
        }
        return SyncPlan(actions: actions, unavailable: unavailable)
    }

    private static func action(_ kind: SyncActionKind, _ item: AnnexQueries.Annexed, _ peer: TransferPeer?, _ reason: String) -> SyncAction {
        SyncAction(action: kind, key: item.key.serialized, file: item.file, peer: peer, reason: reason)
    }

    private static func remoteName(_ peer: TransferPeer) throws -> String {
        guard let name = peer.name, !name.isEmpty, !name.hasPrefix("-") else {
            throw PlanError(description: "peer \(peer.uuid) has no usable git remote name here; link it again (`annex-cli link`)")
        }
        return name
    }

    /// The repository's preferred content expression (`git annex wanted`), nil when none is set.
    static func wanted(_ repository: String, in annex: AnnexRepo) throws -> String? {
        let r = try Command.run(["git", "annex", "wanted", repository], cwd: annex.path)
        guard r.status == 0 else {
            throw PlanError(description: "git annex wanted \(repository) failed in \(annex.path): \(firstLine(r.stderr))")
        }
        let expression = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return expression.isEmpty ? nil : expression
    }

    static func wants(_ repository: String, _ expression: String?) -> String {
        guard let expression else { return "\(repository) has no preferred content set, so it wants every file" }
        return "\(repository) wants it (preferred content \"\(expression)\")"
    }

    static func doesNotWant(_ repository: String, _ expression: String) -> String {
        "\(repository) does not want it (preferred content \"\(expression)\")"
    }

    private static func matching(_ options: [String], in annex: AnnexRepo) throws -> [AnnexQueries.Annexed] {
        let (found, stderr, status) = try AnnexQueries.find(options, in: annex)
        guard status == 0 else {
            throw PlanError(description: "git annex find \(options.joined(separator: " ")) failed in \(annex.path): \(firstLine(stderr))")
        }
        return found
    }

    private static func firstLine(_ text: String) -> String {
        text.split(separator: "\n").first.map(String.init) ?? "no message"
    }
}
