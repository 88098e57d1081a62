#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// RPC requests run concurrently; a repository's creds/p2pauth is edited by each invitation
/// and revocation. None may lose another's token.
@Suite(.timeLimit(minutes: 10)) struct PeerConcurrencyTests {
    let daemon: DaemonProcess
    let scratch = Scratch("annexd-invites")
    let repo: String
    let socket: String

    init() throws {
        daemon = try DaemonProcess(extraArguments: ["--auth-failure-delay", "0.05"])
        repo = scratch.path + "/r"
        _ = try sh("git init -q r && cd r && git annex init -q r", in: scratch.path)
        socket = try #require(try daemon.call("repo.add", .object(["path": .string(repo)]))["socket"]?.stringValue)
    }

    /// Sends every request at once on one connection (the daemon runs them concurrently) and
    /// returns the responses by request index.
    func concurrently(_ requests: [(String, JSONValue)]) throws -> [JSONValue] {
        let c = try daemon.connect()
        var lines = ""
        for (i, (method, params)) in requests.enumerated() {
            lines += JSONValue.object(["jsonrpc": "2.0", "id": .int(Int64(i)), "method": .string(method), "params": params]).serialized() + "\n"
        }
        try c.sendRaw(Array(lines.utf8))
        var byID: [Int64: JSONValue] = [:]
        while byID.count < requests.count {
            let reply = try #require(try c.readJSON(timeout: 60), "the daemon closed the connection after \(byID.count) replies")
            byID[try #require(reply["id"]?.intValue)] = reply
        }
        return (0..<requests.count).map { byID[Int64($0)]! }
    }

    func invite() -> (String, JSONValue) { ("peer.invite", .object(["repo": .string(repo)])) }

    /// The token of each successful invitation, by peer name.
    func tokens(_ replies: [JSONValue]) throws -> [String: AuthToken] {
        var out: [String: AuthToken] = [:]
        for reply in replies {
            let result = try #require(reply["result"], "an invitation failed: \(reply)")
            let address = try TorAnnexAddress(parsing: try #require(result["address"]?.stringValue), token: .required)
            out[try #require(result["peer"]?["name"]?.stringValue)] = address.token
        }
        return out
    }

    var authFile: P2PAuthFile {
        get throws {
            let annex = try AnnexRepo(path: repo)
            return P2PAuthFile(text: try String(contentsOfFile: RepoAuthenticator.authFilePath(annex), encoding: .utf8))
        }
    }

    /// Whether the repository's listener lets `token` in.
    func listenerAccepts(_ token: AuthToken) throws -> Bool {
        let fd = try UnixSocket.connect(socket)
        defer { close(fd) }
        let client = P2PClient(connection: FDConnection(readFD: fd, writeFD: fd), store: nil)
        do {
            _ = try client.connect(clientUUID: UUID().uuidString.lowercased(), token: token.value)
            return true
        } catch P2PClient.ClientError.authFailed {
            return false
        }
    }

    @Test func fiftyConcurrentInvitationsGiveFiftyWorkingTokens() throws {
        let issued = try tokens(try concurrently(Array(repeating: invite(), count: 50)))
        #expect(issued.count == 50, "every invitation got a name of its own")
        #expect(Set(issued.values).count == 50, "every invitation got a token of its own")
        let file = try authFile
        for (name, token) in issued {
            #expect(file.accepts(token.value) != nil, "\(name)'s token is missing from creds/p2pauth")
            #expect(try listenerAccepts(token), "the listener refuses \(name)'s token")
        }
        let peers = try daemon.call("peer.list", .object(["repo": .string(repo)]))["peers"]?.arrayValue ?? []
        #expect(peers.count == 50)
    }

    @Test func invitationsAndRevocationsInterleaved() throws {
        let first = try tokens(try concurrently(Array(repeating: invite(), count: 25)))
        var mixed: [(String, JSONValue)] = []
        for name in first.keys.sorted() {
            mixed.append(("peer.revoke", .object(["repo": .string(repo), "name": .string(name)])))
            mixed.append(invite())
        }
        let replies = try concurrently(mixed)
        for reply in replies { #expect(reply["result"] != nil, "\(reply)") }
        let second = try tokens(stride(from: 1, to: replies.count, by: 2).map { replies[$0] })
        #expect(second.count == 25)

        let file = try authFile
        #expect(file.tokens.count == 25, "only the new tokens are left: \(file.tokens.count)")
        for (name, token) in second {
            #expect(file.accepts(token.value) != nil, "\(name)'s new token is missing from creds/p2pauth")
            #expect(try listenerAccepts(token), "the listener refuses \(name)'s new token")
        }
        for (name, token) in first where second[name]?.value != token.value {
            #expect(file.accepts(token.value) == nil, "\(name)'s revoked token is still in creds/p2pauth")
        }
        // A revoked token is refused at the door (a few: each refusal is slowed).
        for token in first.values.prefix(3) where !second.values.contains(token) {
            #expect(try !listenerAccepts(token), "a revoked token still gets in")
        }
    }
}
