/// annex-cli's text for a sync.run result.
public enum SyncRendering {
    /// One line per peer, then what merging did.
    public static func lines(_ r: SyncRun.Result, direction: SyncDirection = .both) -> [String] {
        var out = r.peers.map { p -> String in
            let label = p.name + (p.uuid.map { " (\($0))" } ?? "")
            if let e = p.error { return "\(label): failed: \(e.message) [\(e.code)]" }
            var did: [String] = []
            if direction.pulls { did.append(p.pulled ? "pulled changes" : "nothing new to pull") }
            if direction.pushes { did.append(p.pushed ? "pushed" : "nothing to push") }
            return "\(label): " + did.joined(separator: ", ")
        }
        if direction.pulls { out.append(r.merged ? "merged" : "nothing to merge") }
        if let c = r.content {
            out.append("content: \(c.gets) get\(c.gets == 1 ? "" : "s") and \(c.puts) put\(c.puts == 1 ? "" : "s") queued, \(c.drops) dropped"
                       + (c.transfers.isEmpty ? "" : " (`annex-cli transfers` follows them)"))
            for d in c.refused {
                out.append("  not dropped: \(d.file ?? d.key ?? "?"): \(d.error?.message ?? "refused")" + (d.error.map { " [\($0.code)]" } ?? ""))
            }
        }
        return out
    }

    /// annex-cli's text for a sync.plan: one line per action, then what cannot be done.
    public static func planLines(_ plan: SyncPlan) -> [String] {
        func line(_ a: SyncAction) -> String {
            let where_ = switch a.action {
            case .get: a.peer.map { " from \($0.name ?? $0.uuid)" } ?? ""
            case .put: a.peer.map { " to \($0.name ?? $0.uuid)" } ?? ""
            case .drop: a.peer.map { " from \($0.name ?? $0.uuid)" } ?? " here"
            }
            return "\(a.action.rawValue) \(a.file ?? a.key)\(where_): \(a.reason)"
        }
        var out = plan.actions.map(line)
        if out.isEmpty { out.append("nothing to get, put or drop") }
        if !plan.unavailable.isEmpty {
            out.append("wanted here, but no peer synced with has it:")
            out += plan.unavailable.map { "  \($0.file ?? $0.key)" }
        }
        return out
    }

    /// The exit status: 0 when every peer synced.
    public static func succeeded(_ r: SyncRun.Result) -> Bool { r.peers.allSatisfy { $0.error == nil } }
}
