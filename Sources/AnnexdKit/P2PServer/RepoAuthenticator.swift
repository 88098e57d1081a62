import Foundation
import Shared

/// Accepts the tokens in the repository's `.git/annex/creds/p2pauth` (where
/// git-annex keeps them, so git-annex's remotedaemon and annexd agree), read
/// afresh on every AUTH so a revoked token stops working at once. Tokens the
/// daemon's peer records mark read-only get read-only access.
public struct RepoAuthenticator: P2PAuthenticator {
    public let repo: AnnexRepo
    /// Returns the access of a token annexd knows (nil: read-write, as git-annex grants).
    let accessOverride: @Sendable (AuthToken) -> PeerAccess?

    public init(repo: AnnexRepo, accessOverride: @escaping @Sendable (AuthToken) -> PeerAccess? = { _ in nil }) {
        self.repo = repo
        self.accessOverride = accessOverride
    }

    public static func authFilePath(_ repo: AnnexRepo) -> String { repo.gitDir + "/annex/creds/p2pauth" }

    public func access(clientUUID: String, token: String) -> PeerAccess? {
        let text = (try? String(contentsOfFile: Self.authFilePath(repo), encoding: .utf8)) ?? ""
        guard let matched = P2PAuthFile(text: text).accepts(token) else { return nil }
        return accessOverride(matched) ?? .readWrite
    }
}
