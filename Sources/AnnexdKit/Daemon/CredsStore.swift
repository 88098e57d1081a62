#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Shared
import Synchronization

/// The files git-annex keeps in a repository's `.git/annex/creds/`, edited the way git-annex
/// reads them: `p2pauth` (tokens this repository accepts), `p2paddrs` (its own addresses) and
/// one file per linked onion (the token presented there). Every edit of one repository runs
/// alone (RPC requests run concurrently), reads the file fresh, and replaces it atomically
/// (a temp file of its own, fsync, rename; 0600).
public final class CredsStore: Sendable {
    private let locks = Mutex<[String: NSRecursiveLock]>([:])

    public init() {}

    /// Runs `body` alone among the edits of the repository whose git dir is `gitDir` (re-entrant:
    /// a peer invitation holds it across its token and registry changes).
    public func serialized<T>(_ gitDir: String, _ body: () throws -> T) rethrows -> T {
        let lock = locks.withLock { l in
            if let existing = l[gitDir] { return existing }
            let made = NSRecursiveLock()
            l[gitDir] = made
            return made
        }
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    static func directory(_ annex: AnnexRepo) -> String { annex.gitDir + "/annex/creds" }

    /// Reads, changes and replaces creds/p2pauth. Call inside `serialized` when the change
    /// depends on other state; on its own it is still atomic per edit.
    public func editAuth<T>(_ annex: AnnexRepo, _ change: (inout P2PAuthFile) throws -> T) throws -> T {
        try serialized(annex.gitDir) {
            let path = RepoAuthenticator.authFilePath(annex)
            try Posix.makeDirectories(Posix.dirname(path), mode: 0o700)
            var file = P2PAuthFile(text: (try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
            let result = try change(&file)
            try StateDirectory.writeAtomically(path, Array(file.text.utf8), mode: 0o600)
            return result
        }
    }

    /// Adds `address` to creds/p2paddrs unless it is there (`git annex p2p --gen-addresses` reads it).
    public func recordOwnAddress(_ annex: AnnexRepo, _ address: TorAnnexAddress) throws {
        try serialized(annex.gitDir) {
            let path = Self.directory(annex) + "/p2paddrs"
            try Posix.makeDirectories(Posix.dirname(path), mode: 0o700)
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            guard !text.split(separator: "\n").contains(where: { $0 == address.address }) else { return }
            try StateDirectory.writeAtomically(path, Array((text + address.address + "\n").utf8), mode: 0o600)
        }
    }

    /// Stores the token presented to `onion`, under every name git-annex looks for.
    public func storeRemoteToken(_ annex: AnnexRepo, onion: String, _ token: AuthToken) throws {
        try serialized(annex.gitDir) {
            let dir = Self.directory(annex)
            try Posix.makeDirectories(dir, mode: 0o700)
            for name in Self.remoteTokenFileNames(onion: onion) {
                try StateDirectory.writeAtomically(dir + "/" + name, Array(token.value.utf8), mode: 0o600)
            }
        }
    }

    public func removeRemoteToken(_ annex: AnnexRepo, onion: String) {
        serialized(annex.gitDir) {
            for name in Self.remoteTokenFileNames(onion: onion) { unlink(Self.directory(annex) + "/" + name) }
        }
    }

    /// Where git-annex looks for the token of a tor-annex remote: the onion address as is
    /// (10.20230126), or with every non-alphanumeric character URL-encoded (newer releases:
    /// `xxx%2Eonion`). Both are written.
    static func remoteTokenFileNames(onion: String) -> [String] {
        var escaped = ""
        for b in onion.utf8 {
            let c = Character(UnicodeScalar(b))
            if c.isASCII && (c.isLetter || c.isNumber) { escaped.append(c) } else { escaped += String(format: "%%%02X", b) }
        }
        return escaped == onion ? [onion] : [onion, escaped]
    }
}
