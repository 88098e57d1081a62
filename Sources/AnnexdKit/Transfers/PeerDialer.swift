#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOCore
import Shared

/// Reaches a repository's tor-annex remotes as git-annex's own tor client does: through tor's
/// SOCKS port, presenting the token git-annex keeps in creds/ for that onion, as this
/// repository's UUID. Blocking: call it off the event loop and the concurrency pool.
public struct PeerDialer: Sendable {
    /// Why a peer could not be reached; `code` is the transfer failure code.
    public struct DialError: Error, CustomStringConvertible, Equatable {
        public let code: String
        /// The finer reason (for an unreachable peer, the SOCKS connector's: socks_unreachable, peer_timeout, …).
        public let reason: String
        public let description: String
        init(code: String, reason: String? = nil, description: String) {
            self.code = code
            self.reason = reason ?? code
            self.description = description
        }
    }

    let group: EventLoopGroup
    /// Where peers are dialled (tor's SOCKS port, or --socks).
    let socks: @Sendable () async -> (host: String, port: Int)

    /// Connects to `address` and authenticates with `token` as `uuid`; content moves in and out of `store`.
    /// `socksAddress` is what `socks()` answered (resolved by the async caller).
    func connect(_ address: TorAnnexAddress, token: AuthToken, as uuid: String, store: ObjectStore?,
                 socksAddress: (host: String, port: Int)) throws(DialError) -> P2PClient {
        let fd: Int32
        do {
            fd = try SOCKSConnector.connect(proxyHost: socksAddress.host, proxyPort: socksAddress.port,
                                            host: address.onion, port: address.port, group: group)
        } catch let f as SOCKSConnector.Failure {
            throw DialError(code: "peer_unreachable", reason: f.reason, description: f.description)
        } catch {
            throw DialError(code: "peer_unreachable", reason: "connect_failed", description: "\(error)")
        }
        let client = P2PClient(connection: FDConnection(readFD: fd, writeFD: fd), store: store, ownsFD: true)
        do {
            try client.connect(clientUUID: uuid, token: token.value)
        } catch P2PClient.ClientError.authFailed {
            client.close()
            throw DialError(code: "auth_failed", description: "\(address.address) refused this repository's token: link it again (annex-cli link, or git annex p2p --link)")
        } catch P2PClient.ClientError.closed {
            client.close()
            throw DialError(code: "peer_unreachable", description: "\(address.address) closed the connection before authenticating")
        } catch {
            client.close()
            throw DialError(code: "protocol_error", description: "talking to \(address.address) failed: \(error)")
        }
        return client
    }

    /// Reaches tor-annex remote `remote` of `annex`: its address, the token stored for its onion,
    /// AUTH as the repository. Errors carry transfer failure codes (no_peer, auth_failed, …).
    func connect(_ remote: RemoteInfo, of annex: AnnexRepo, store: ObjectStore?,
                 socksAddress: (host: String, port: Int)) throws(DialError) -> P2PClient {
        guard let address = try? TorAnnexAddress(parsing: remote.address) else {
            throw DialError(code: "no_peer", description: "remote \(remote.name) has an unusable address \(remote.address)")
        }
        guard let token = Self.token(annex, onion: address.onion) else {
            throw DialError(code: "auth_failed", description: "no token is stored for \(remote.name) (\(address.address)) in \(annex.path)/.git/annex/creds: link it again (annex-cli remote add, or git annex p2p --link)")
        }
        return try connect(address, token: token, as: annex.uuid, store: store, socksAddress: socksAddress)
    }

    /// The token this repository presents to `onion` (what `git annex p2p --link` stored).
    static func token(_ annex: AnnexRepo, onion: String) -> AuthToken? {
        for name in CredsStore.remoteTokenFileNames(onion: onion) {
            let path = CredsStore.directory(annex) + "/" + name
            if let text = try? String(contentsOfFile: path, encoding: .utf8),
               let token = AuthToken(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                return token
            }
        }
        return nil
    }
}
