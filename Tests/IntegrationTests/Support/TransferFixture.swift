#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// Two repositories for transfer tests: `server` (holding files, served by annexd `serving`, or
/// by stock remotedaemon) and `client` (a clone, served by annexd `daemon`), the client linked
/// to the server as remote `peer` through the SOCKS stand-in.
final class TransferFixture {
    typealias Annexd = DaemonTorAnnexTests.Annexd
    let net: OnionNetwork
    let daemon: Annexd
    /// The annexd serving the server repository (another process, so it can die on its own).
    var serving: Annexd?
    /// Or stock git-annex serving it.
    var stock: StockRemotedaemon?
    /// The serving annexd's `<onion>:<port>` and the unix socket the SOCKS stand-in routes it to.
    private(set) var servingRoute: (address: String, socket: String)?
    let annex: TestEnvironment.GitAnnex
    var root: String { daemon.scratch.path }
    var server: String { root + "/server" }
    var client: String { root + "/client" }
    var serverUUID: String { (try? sh("git config annex.uuid", in: server).trimmingCharacters(in: .whitespacesAndNewlines)) ?? "" }
    var clientUUID: String { (try? sh("git config annex.uuid", in: client).trimmingCharacters(in: .whitespacesAndNewlines)) ?? "" }

    /// `files`: name → size in random bytes, added to the server (locked). `stockDebug`: the
    /// stock remotedaemon logs the P2P messages it exchanges (`stock.logPath`).
    /// `prepareClient` runs on the client repository before annexd adds it (to mount a
    /// filesystem under it, say; the client annexd is started again after it). `clientDaemon`: the client annexd's git-annex (first in its
    /// PATH) and extra arguments.
    init(files: [String: Int], annex: TestEnvironment.GitAnnex = TestEnvironment.gitAnnexVersions[0], serveWithAnnexd: Bool = true,
         stockDebug: Bool = false, clientDaemon: (annex: TestEnvironment.GitAnnex?, arguments: [String]) = (nil, []),
         prepareClient: ((String) throws -> Void)? = nil) throws {
        self.annex = annex
        net = try OnionNetwork()
        daemon = try Annexd(extra: clientDaemon.arguments, net: net, annex: clientDaemon.annex)
        var script = "git init -q server && cd server && git annex init -q server\n"
        for (name, size) in files.sorted(by: { $0.key < $1.key }) { script += "head -c \(size) /dev/urandom > \(name)\n" }
        script += "git annex add -q . && git commit -qm files\n"
        script += "cd .. && git clone -q server client && cd client && git annex init -q client\n"
        try sh(script, in: root, annex: annex)
        let address: String
        if serveWithAnnexd {
            let s = try Annexd(net: net)
            serving = s
            let info = try s.json("repo add \(server)")
            let route = ("\(info["onion"]!.stringValue!):\(info["port"]!.intValue!)", info["socket"]!.stringValue!)
            servingRoute = route
            try net.map(route.0, to: route.1)
            address = try #require(try s.json("invite --repo \(server) --name client")["address"]?.stringValue)
        } else {
            let rd = try StockRemotedaemon(repo: server, scratch: root, net: net, annex: annex, debug: stockDebug)
            stock = rd
            address = rd.address
        }
        if let prepareClient {
            try prepareClient(client)
            // As root annexd runs in a mount namespace of its own (ip netns exec), copied when it
            // started: started again, it sees what was mounted.
            _ = daemon.process.terminate()
            try daemon.start()
        }
        _ = try daemon.json("repo add \(client)")
        _ = try daemon.process.call("peer.link", ["repo": .string(client), "name": "peer", "address": .string(address)])
    }

    func key(_ file: String, in repo: String? = nil) throws -> String {
        try AnnexLookups.key(file, in: repo ?? server)
    }

    /// transfer.start; the transfers it returns.
    func start(_ direction: String, paths: [String]? = nil, keys: [String]? = nil, peer: String? = nil,
               on d: Annexd? = nil) throws -> [JSONValue] {
        var params: JSONObject = ["repo": .string(client), "direction": .string(direction)]
        if let paths { params["paths"] = .array(paths.map(JSONValue.string)) }
        if let keys { params["keys"] = .array(keys.map(JSONValue.string)) }
        if let peer { params["peer"] = .string(peer) }
        return try #require((d ?? daemon).process.call("transfer.start", .object(params))["transfers"]?.arrayValue)
    }

    /// Polls transfer.get until `done(transfer)` or the deadline; the last answer.
    @discardableResult
    func wait(_ id: String, timeout: TimeInterval = 60, on d: Annexd? = nil,
              until done: (JSONValue) -> Bool = { ["done", "failed", "canceled"].contains($0["state"]?.stringValue ?? "") }) throws -> JSONValue {
        try (d ?? daemon).process.transfer(id, timeout: timeout, until: done)
    }

    /// UUIDs `git annex whereis` in `repo` lists for `key`.
    func whereis(_ key: String, in repo: String) throws -> Set<String> {
        try AnnexLookups.whereis(key, in: repo, annex: annex)
    }
}
