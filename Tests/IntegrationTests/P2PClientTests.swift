import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// annexd's P2P client against real servers: `git-annex-shell p2pstdio` of
/// both git-annex versions, and `annexd p2p-stdio`.
@Suite(.serialized, .timeLimit(minutes: 10)) struct P2PClientTests {
    enum Server: CustomStringConvertible, Sendable {
        case gitAnnexShell(TestEnvironment.GitAnnex)
        case annexd
        var description: String {
            switch self {
            case .gitAnnexShell(let a): return "git-annex-shell (\(a.name))"
            case .annexd: return "annexd p2p-stdio"
            }
        }
        var annex: TestEnvironment.GitAnnex { if case .gitAnnexShell(let a) = self { return a }; return TestEnvironment.gitAnnexVersions[0] }
        func command(repo: String, clientUUID: String) -> [String] {
            switch self {
            case .gitAnnexShell(let a): return [a.gitAnnexShell, "p2pstdio", repo, clientUUID]
            case .annexd: return [TestEnvironment.annexd, "p2p-stdio", repo, "--client-uuid", clientUUID]
            }
        }
    }

    static let servers: [Server] = TestEnvironment.gitAnnexVersions.map { .gitAnnexShell($0) } + [.annexd]

    /// A server repo with content, and an empty local repo with its store.
    struct Setup {
        let scratch = Scratch("annexd-client")
        let server: Server
        var remote: String { scratch.path + "/remote" }
        var local: String { scratch.path + "/local" }
        let store: ObjectStore
        let bigKey: AnnexKey

        init(_ server: Server) throws {
            self.server = server
            let root = scratch.path
            try sh("""
                git init -q remote && cd remote && git annex init -q remote
                head -c 5000000 /dev/urandom > big && git annex add -q big && git commit -qm big
                cd .. && git init -q local && cd local && git annex init -q local
                """, in: root, annex: server.annex)
            store = ObjectStore(repo: try AnnexRepo(path: root + "/local"))
            bigKey = try AnnexKey(parsing: try sh("git annex lookupkey big", in: root + "/remote").trimmingCharacters(in: .whitespacesAndNewlines))
        }

        func connect() throws -> P2PClient {
            let client = try P2PClient.spawn(server.command(repo: remote, clientUUID: store.repo.uuid), store: store)
            let uuid = try client.connect()
            #expect(uuid == (try sh("git config annex.uuid", in: remote).trimmingCharacters(in: .whitespacesAndNewlines)))
            return client
        }

        func remoteHas(_ key: AnnexKey) throws -> Bool {
            !(try sh("git annex contentlocation \(key)", in: remote, annex: server.annex, allowFailure: true)
                .trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        }
    }

    @Test(arguments: servers)
    func getAndResume(server: Server) throws {
        let s = try Setup(server)
        let client = try s.connect()
        #expect(try client.checkPresent(s.bigKey))

        // Interrupt the first GET after 1 MiB: the partial stays for resume.
        client.receiveLimit = 1 << 20
        #expect(throws: P2PClient.ClientError.closed) { try client.get(s.bigKey, file: "big") }
        client.close()
        #expect(s.store.partialSize(s.bigKey) == 1 << 20)

        let again = try s.connect()
        let trace = TraceLog()
        again.conn.trace = trace.record
        #expect(try again.get(s.bigKey, file: "big"))
        again.close()
        #expect(trace.lines.contains("> GET \(1 << 20) big \(s.bigKey)"), "resumed from the partial: \(trace.lines)")
        let path = try #require(s.store.contentPath(s.bigKey))
        #expect(sameBytes(path, s.remote + "/big"))
        #expect(s.store.partialSize(s.bigKey) == 0)
        try sh("git annex fsck --key \(s.bigKey)", in: s.local, annex: server.annex)
    }

    @Test(arguments: servers)
    func putRemoveAndLock(server: Server) throws {
        let s = try Setup(server)
        try sh("head -c 300000 /dev/urandom > mine && git annex add -q mine && git commit -qm mine", in: s.local, annex: server.annex)
        let key = try AnnexKey(parsing: try sh("git annex lookupkey mine", in: s.local).trimmingCharacters(in: .whitespacesAndNewlines))
        let client = try s.connect()
        defer { client.close() }

        #expect(!(try client.checkPresent(key)))
        #expect(try client.put(key, file: "mine") == .stored)
        #expect(try s.remoteHas(key))
        try sh("git annex fsck --key \(key)", in: s.remote, annex: server.annex)
        #expect(try client.put(key, file: "mine") == .alreadyHad)

        // While the server holds the lock, a drop on the server must fail.
        let dropped: Bool? = try client.withContentLocked(key) {
            let out = try sh("git annex drop --force --key \(key)", in: s.remote, annex: server.annex, allowFailure: true)
            _ = out
            return try !s.remoteHas(key)
        }
        #expect(dropped == false)
        #expect(try s.remoteHas(key))

        #expect(try client.remove(key))
        #expect(!(try s.remoteHas(key)))
        #expect(!(try client.checkPresent(key)))
    }

    @Test func versionsNegotiated() throws {
        for (server, expected) in zip(Self.servers, [1, 4, 4]) {
            let s = try Setup(server)
            let c = try s.connect()
            #expect(c.version == expected, "\(server)")
            c.close()
        }
    }
}

final class TraceLog: @unchecked Sendable {
    private(set) var lines: [String] = []
    func record(_ dir: String, _ line: String) { lines.append("\(dir) \(line)") }
}
