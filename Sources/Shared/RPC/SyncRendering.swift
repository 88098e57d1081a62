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
        return out
    }

    /// The exit status: 0 when every peer synced.
    public static func succeeded(_ r: SyncRun.Result) -> Bool { r.peers.allSatisfy { $0.error == nil } }
}
