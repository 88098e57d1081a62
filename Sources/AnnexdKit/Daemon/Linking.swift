#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Shared

/// A peer address with its token: `tor-annex::ONION:PORT:TOKEN`.
public struct P2PAddressWithToken: Equatable, Sendable {
    public let onion: String
    public let port: Int
    public let token: AuthToken
    public var address: String { "tor-annex::\(onion):\(port)" }

    public init(parsing text: String) throws(RPCError) {
        func bad(_ why: String) -> RPCError {
            RPCError.invalidParams(reason: "invalid_address", "params.address: \(why); expected tor-annex::ONION.onion:PORT:TOKEN as `annex-cli invite` or `git annex p2p --gen-addresses` prints it")
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix("tor-annex::") else { throw bad("it does not start with tor-annex::") }
        let parts = trimmed.dropFirst("tor-annex::".count).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw bad("it has \(parts.count) fields after tor-annex::, not 3") }
        guard OnionKey.isValidAddress(String(parts[0])), parts[0].hasSuffix(".onion") else { throw bad("\(parts[0]) is not a v3 onion address") }
        guard let port = Int(parts[1]), (1...65535).contains(port) else { throw bad("\(parts[1]) is not a port number") }
        guard let token = AuthToken(String(parts[2])) else { throw bad("the token is not 128 lowercase hex characters") }
        onion = String(parts[0]).lowercased()
        self.port = port
        self.token = token
    }
}

extension Daemon {
    /// `git annex p2p --link`: authenticate first, then `git remote add`, the
    /// remote's annex-uuid, and the token in creds/<onion> (0600), exactly where
    /// git-annex looks, so git-annex's own tor-annex remote code uses it.
    func link(_ params: PeerLink.Params) async throws -> RemoteInfo {
        let repo = try lookup(params.repo)
        let peer = try P2PAddressWithToken(parsing: params.address)
        guard !params.name.isEmpty, params.name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw RPCError.invalidParams(reason: "invalid_remote_name", "params.name: use letters, digits, '-', '_' or '.'")
        }
        if let existing = try? Command.output(["git", "config", "--get", "remote.\(params.name).url"], cwd: repo.path), !existing.isEmpty {
            throw RPCError(.alreadyExists, message: "\(repo.path) already has a remote named \(params.name) (\(existing.trimmingCharacters(in: .newlines)))",
                           reason: "remote_exists")
        }
        let theirUUID = try await authenticate(peer, as: repo.uuid)
        let annex = try openRepo(repo)
        do {
            try Command.output(["git", "remote", "add", params.name, peer.address], cwd: repo.path)
            try Command.output(["git", "config", "remote.\(params.name).annex-uuid", theirUUID], cwd: repo.path)
            let creds = annex.gitDir + "/annex/creds"
            try Posix.makeDirectories(creds, mode: 0o700)
            for name in Self.credsFileNames(onion: peer.onion) {
                try StateDirectory.writeAtomically(creds + "/" + name, Array(peer.token.value.utf8), mode: 0o600)
            }
        } catch {
            throw RPCError(.gitAnnexError, message: "linking \(params.name) in \(repo.path) failed: \(error)", reason: "git_failed")
        }
        publish("peer.linked", ["repo": .string(repo.path), "remote": .string(params.name), "uuid": .string(theirUUID),
                                "address": .string(peer.address)])
        return RemoteInfo(name: params.name, address: peer.address, uuid: theirUUID)
    }

    /// Where git-annex looks for the token of a tor-annex remote: the onion
    /// address as is (10.20230126), or with every non-alphanumeric character
    /// URL-encoded (newer releases: `xxx%2Eonion`). Both are written.
    static func credsFileNames(onion: String) -> [String] {
        var escaped = ""
        for b in onion.utf8 {
            let c = Character(UnicodeScalar(b))
            if c.isASCII && (c.isLetter || c.isNumber) { escaped.append(c) } else { escaped += String(format: "%%%02X", b) }
        }
        return escaped == onion ? [onion] : [onion, escaped]
    }

    /// Connects through tor and authenticates; the peer's UUID.
    private func authenticate(_ peer: P2PAddressWithToken, as uuid: String) async throws -> String {
        let socks = await socksAddress()
        let group = self.group
        // Blocking network work on its own thread, not on the concurrency pool.
        return try await Blocking.run {
            let fd: Int32
            do {
                fd = try SOCKSConnector.connect(proxyHost: socks.host, proxyPort: socks.port,
                                                host: peer.onion, port: peer.port, group: group)
            } catch let f as SOCKSConnector.Failure {
                throw RPCError(.unavailable, message: f.description, reason: f.reason)
            } catch {
                throw RPCError(.unavailable, message: "\(error)", reason: "connect_failed")
            }
            defer { close(fd) }
            let client = P2PClient(connection: FDConnection(readFD: fd, writeFD: fd), store: nil)
            do {
                return try client.connect(clientUUID: uuid, token: peer.token.value)
            } catch P2PClient.ClientError.authFailed {
                throw RPCError(.permissionDenied, message: "the peer at \(peer.address) refused the token: ask for a fresh invitation",
                               reason: "auth_failed")
            } catch {
                throw RPCError(.unavailable, message: "talking to \(peer.address) failed: \(error)", reason: "protocol_error")
            }
        }
    }

    func remotes(of repo: Registry.Repo) throws -> [RemoteInfo] {
        let out = (try? Command.output(["git", "config", "--get-regexp", "^remote\\..*\\.(url|annex-uuid)$"], cwd: repo.path)) ?? ""
        var urls: [(String, String)] = [], uuids: [String: String] = [:]
        for line in out.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            let key = parts[0]
            if key.hasSuffix(".url"), parts[1].hasPrefix("tor-annex::") {
                urls.append((String(key.dropFirst("remote.".count).dropLast(".url".count)), parts[1]))
            } else if key.hasSuffix(".annex-uuid") {
                uuids[String(key.dropFirst("remote.".count).dropLast(".annex-uuid".count))] = parts[1]
            }
        }
        return urls.map { RemoteInfo(name: $0.0, address: $0.1, uuid: uuids[$0.0]) }
    }

    func unlinkRemote(_ params: PeerSelector) throws -> RemoteInfo {
        let repo = try lookup(params.repo)
        guard let remote = try remotes(of: repo).first(where: { $0.name == params.name }) else {
            throw RPCError(.notFound, message: "\(repo.path) has no tor-annex remote named \(params.name)", reason: "remote_not_found")
        }
        try Command.output(["git", "remote", "remove", params.name], cwd: repo.path)
        let onion = remote.address.dropFirst("tor-annex::".count).split(separator: ":").first.map(String.init) ?? ""
        let stillUsed = try remotes(of: repo).contains { $0.address.contains(onion) }
        if !stillUsed, !onion.isEmpty {
            let creds = try openRepo(repo).gitDir + "/annex/creds/"
            for name in Self.credsFileNames(onion: onion) { Glibc.unlink(creds + name) }
        }
        publish("peer.unlinked", ["repo": .string(repo.path), "remote": .string(params.name)])
        return remote
    }
}
