import Shared

/// The policy for what is not a transfer: pairing, peers, tor and onions.
extension NotifyPolicy {
    mutating func networkEvent(_ type: String, _ e: JSONValue, now: Double) -> [NotifyIntent] {
        let repo = e["repo"]?.stringValue ?? ""
        let name = NotifyText.repoName(repo)
        switch type {
        case PairCode.type:
            guard let id = e["pairing"]?.stringValue, let code = e["code"]?.stringValue else { return [] }
            let peer = e["name"]?.stringValue ?? "the other side"
            return [NotifyIntent(slot: .pairing(id: id), replaces: false, summary: "Pairing code for \(name)",
                                 body: "Give the other side this code: \(code)\nIt will be called \(peer) here.",
                                 urgency: .critical, category: "network")]
        case PairSucceeded.type:
            guard let id = e["pairing"]?.stringValue else { return [] }
            return [NotifyIntent(slot: .pairing(id: id), summary: "\(name) is paired with \(e["remote"]?.stringValue ?? "a peer")",
                                 body: e["address"]?.stringValue ?? "", category: "network.connected")]
        case PairFailed.type:
            guard let id = e["pairing"]?.stringValue else { return [] }
            return [NotifyIntent(slot: .pairing(id: id), summary: "Pairing \(name) failed",
                                 body: e["error"]?.stringValue ?? e["reason"]?.stringValue ?? "",
                                 urgency: .critical, category: "network.error")]
        case RemoteConnected.type, RemoteDisconnected.type:
            let peer = e["peer"]
            let uuid = peer?["uuid"]?.stringValue ?? ""
            let peerName = peer?["name"]?.stringValue ?? uuid
            let slot = NotifyIntent.Slot.peer(repo: repo, peer: uuid)
            if type == RemoteConnected.type {
                return rateLimited(NotifyIntent(slot: slot, summary: "\(name): \(peerName) is reachable", urgency: .low,
                                                category: "network.connected"), now: now)
            }
            if e["reason"]?.stringValue == "stopped" { return [] }
            return rateLimited(NotifyIntent(slot: slot, summary: "\(name): lost \(peerName)",
                                            body: e["message"]?.stringValue ?? "", category: "network.disconnected"), now: now)
        case PeerConnected.type:
            let client = e["client_uuid"]?.stringValue ?? ""
            // The invitation's name when annexd made the token, else only the UUID it claims.
            let who = e["peer"]?.stringValue.map { "\($0) connected" } ?? "a peer connected"
            return rateLimited(NotifyIntent(slot: .peer(repo: repo, peer: client), summary: "\(name): \(who)",
                                            body: "repository \(client)", urgency: .low, category: "network.connected"), now: now)
        case TorBootstrap.type:
            return torBootstrap(e, now: now)
        case TorDisconnected.type:
            torTrouble = true
            var body = e["error"]?.stringValue ?? ""
            if let retry = e["retry_in"]?.doubleValue { body += (body.isEmpty ? "" : "\n") + "annexd tries again in \(Int(retry.rounded())) s." }
            return rateLimited(NotifyIntent(slot: .tor, summary: "annexd lost its connection to tor", body: body,
                                            category: "network.error"), now: now)
        case TorConnected.type:
            guard torTrouble else { return [] }
            torTrouble = false
            return rateLimited(NotifyIntent(slot: .tor, summary: "annexd is connected to tor again", urgency: .low,
                                            category: "network.connected"), now: now)
        case OnionFailed.type:
            let onion = e["onion"]?.stringValue ?? ""
            return rateLimited(NotifyIntent(slot: .onion(repo: repo), summary: "\(name) cannot be reached over tor",
                                            body: "Publishing \(onion) failed: \(e["error"]?.stringValue ?? "")",
                                            urgency: .critical, category: "network.error"), now: now)
        default:
            return []
        }
    }

    /// tor's bootstrap: its warning (when it recommends warning about it), and the end of the trouble.
    private mutating func torBootstrap(_ e: JSONValue, now: Double) -> [NotifyIntent] {
        if let warning = e["warning"]?.stringValue, e["recommendation"]?.stringValue != "ignore" {
            torTrouble = true
            let summary = e["summary"]?.stringValue ?? ""
            return rateLimited(NotifyIntent(slot: .tor, summary: "Tor cannot connect" + (summary.isEmpty ? "" : ": " + summary),
                                            body: warning, category: "network.error"), now: now)
        }
        guard torTrouble, e["progress"]?.intValue == 100 else { return [] }
        torTrouble = false
        return rateLimited(NotifyIntent(slot: .tor, summary: "Tor is connected", urgency: .low, category: "network.connected"), now: now)
    }
}
