import Foundation
import Shared

/// Accepts the tokens in the repository's `.git/annex/creds/p2pauth` (where
/// git-annex keeps them, so git-annex's remotedaemon and annexd agree), read
/// afresh on every AUTH so a revoked token stops working at once. A token the
/// daemon's peer records know grants what they say (read-only, and the peer's name).
public struct RepoAuthenticator: P2PAuthenticator {
    public let repo: AnnexRepo
    /// What a token annexd knows grants (nil: read-write and no name, as git-annex grants).
    let known: @Sendable (AuthToken) -> PeerGrant?

    public init(repo: AnnexRepo, known: @escaping @Sendable (AuthToken) -> PeerGrant? = { _ in nil }) {
        self.repo = repo
        self.known = known
    }

    public static func authFilePath(_ repo: AnnexRepo) -> String { repo.gitDir + "/annex/creds/p2pauth" }

    public func grant(clientUUID: String, token: String) -> PeerGrant? {
        let text = (try? String(contentsOfFile: Self.authFilePath(repo), encoding: .utf8)) ?? ""
        guard let matched = P2PAuthFile(text: text).accepts(token) else { return nil }
        return known(matched) ?? PeerGrant(access: .readWrite)
    }
}
