import Shared

/// The P2P connections one drop request opens to a repository's tor-annex remotes: each peer
/// is dialled at most once per request (an unreachable peer is not dialled again for every
/// key), and every connection is closed at the end. Blocking; one thread at a time.
final class PeerSessions {
    private enum Session {
        case open(P2PClient)
        case failed(TransferFailure)
    }

    let annex: AnnexRepo
    let remotes: [RemoteInfo]
    let dialer: PeerDialer
    let socks: (host: String, port: Int)
    private var sessions: [String: Session] = [:]

    init(annex: AnnexRepo, remotes: [RemoteInfo], dialer: PeerDialer, socks: (host: String, port: Int)) {
        self.annex = annex
        self.remotes = remotes
        self.dialer = dialer
        self.socks = socks
    }

    func remote(uuid: String) -> RemoteInfo? { remotes.first { $0.uuid == uuid } }

    /// An authenticated connection to the remote with `uuid`, or why there is none.
    func client(_ uuid: String) -> Result<P2PClient, TransferFailure> {
        switch sessions[uuid] {
        case .open(let c): return .success(c)
        case .failed(let f): return .failure(f)
        case nil: break
        }
        let result = dial(uuid)
        switch result {
        case .success(let c): sessions[uuid] = .open(c)
        case .failure(let f): sessions[uuid] = .failed(f)
        }
        return result
    }

    /// A request on the connection failed: it is not used again.
    func broke(_ uuid: String, _ error: any Error) {
        if case .open(let c) = sessions[uuid] { c.close() }
        let name = remote(uuid: uuid)?.name ?? uuid
        sessions[uuid] = .failed(TransferFailure(code: "protocol_error", message: "the connection to \(name) failed: \(error)"))
    }

    func closeAll() {
        for case .open(let c) in sessions.values { c.close() }
        sessions = [:]
    }

    private func dial(_ uuid: String) -> Result<P2PClient, TransferFailure> {
        guard let remote = remote(uuid: uuid) else {
            return .failure(TransferFailure(code: "no_peer", message: "\(uuid) is not a tor-annex remote of \(annex.path), so annexd cannot reach it"))
        }
        do {
            return .success(try dialer.connect(remote, of: annex, store: nil, socksAddress: socks))
        } catch {
            return .failure(TransferFailure(code: error.code, message: "\(remote.name): \(error.description)"))
        }
    }
}
