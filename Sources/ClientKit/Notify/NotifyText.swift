import Shared

/// The words of the transfer notifications (pure).
enum NotifyText {
    /// A repository as people name it: the last part of its path.
    static func repoName(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }

    /// The file a transfer moves, or its key when it has no file.
    static func fileName(_ t: TransferInfo) -> String { t.file ?? t.key }

    static func peerName(_ t: TransferInfo) -> String { t.peer?.name ?? t.peer?.uuid ?? "a peer" }

    /// "from nas" for a get, "to nas" for a put.
    static func fromOrTo(_ t: TransferInfo) -> String { (t.direction == .get ? "from " : "to ") + peerName(t) }

    /// The repository's active transfers: "Downloading photo.jpg" with how far, or "3 transfers".
    static func progress(_ active: [TransferInfo], repo: String, replaces: Bool) -> NotifyIntent {
        let summary: String
        if active.count == 1, let t = active.first {
            summary = (t.direction == .get ? "Downloading " : "Uploading ") + fileName(t)
        } else {
            summary = "\(active.count) transfers in \(repoName(repo))"
        }
        let bytes = active.reduce(Int64(0)) { $0 + $1.bytes }
        let sizes = active.compactMap(\.size)
        var body = TransferRendering.bytes(bytes)
        if sizes.count == active.count {
            let total = sizes.reduce(0, +)
            if total > 0 { body = "\(Int(Double(bytes) * 100 / Double(total)))% of " + TransferRendering.bytes(total) }
        }
        let rate = active.reduce(0.0) { $0 + $1.rate }
        if rate >= 1 { body += ", " + TransferRendering.rate(rate) }
        if active.count == 1, let t = active.first { body += ", " + fromOrTo(t) }
        return NotifyIntent(slot: .transfers(repo: repo), replaces: replaces, summary: summary, body: body,
                            urgency: .low, category: "transfer")
    }

    /// Finished transfers of a repository, shown once: the file's name, or how many.
    static func finished(_ done: [TransferInfo], repo: String, replaces: Bool) -> NotifyIntent {
        let summary: String
        var body: String
        if done.count == 1 {
            let t = done[0]
            summary = (t.direction == .get ? "Downloaded " : "Uploaded ") + fileName(t)
            body = fromOrTo(t)
            if let size = t.size { body += ", " + TransferRendering.bytes(size) }
        } else {
            let gets = done.filter { $0.direction == .get }.count
            let verb = gets == done.count ? "Downloaded" : gets == 0 ? "Uploaded" : "Transferred"
            summary = "\(verb) \(done.count) files"
            let shown = done.prefix(5).map(fileName)
            body = shown.joined(separator: ", ") + (done.count > shown.count ? " and \(done.count - shown.count) more" : "")
        }
        body += (body.isEmpty ? "" : "\n") + "in " + repoName(repo)
        return NotifyIntent(slot: .transfers(repo: repo), replaces: replaces, summary: summary, body: body,
                            category: "transfer.complete")
    }

    /// A transfer that failed with no retry planned: the reason, and a Retry action.
    static func failed(_ t: TransferInfo) -> NotifyIntent {
        let summary = (t.direction == .get ? "Could not download " : "Could not upload ") + fileName(t)
        var body = t.error?.message ?? "failed"
        if let code = t.error?.code { body += " (\(code))" }
        return NotifyIntent(slot: .failure(transfer: t.id), summary: summary, body: body, urgency: .critical,
                            category: "transfer.error", actions: [.retry([t.id])])
    }
}
