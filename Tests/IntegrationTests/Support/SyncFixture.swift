#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// Two repositories for sync tests, `a` holding a commit and `b` a clone of it (without
/// origin), each served by an annexd of its own and linked to the other both ways through
/// the SOCKS stand-in (`b`'s remote `a`, `a`'s remote `b`); or `a` served by stock `git annex
/// remotedaemon`, `b` linked to it. The daemons run `annex` (its `git annex merge`).
final class SyncFixture {
    typealias Annexd = DaemonTorAnnexTests.Annexd
    let net: OnionNetwork
    /// The daemon serving `b`.
    let daemonB: Annexd
    /// The daemon serving `a` (nil when stock remotedaemon does).
    let daemonA: Annexd?
    var stock: StockRemotedaemon?
    let annex: TestEnvironment.GitAnnex
    var root: String { daemonB.scratch.path }
    var a: String { root + "/a" }
    var b: String { root + "/b" }

    init(annex: TestEnvironment.GitAnnex = TestEnvironment.gitAnnexVersions[0], stockA: Bool = false) throws {
        self.annex = annex
        net = try OnionNetwork()
        daemonB = try Annexd(net: net, annex: annex)
        let root = daemonB.scratch.path, a = root + "/a", b = root + "/b"
        try sh("""
            git init -q -b main a && cd a && git annex init -q a
            echo one > one && git annex add -q one && git commit -qm one
            cd .. && git clone -q a b && cd b && git remote remove origin && git annex init -q b
            """, in: root, annex: annex)
        let addressOfA: String
        if stockA {
            daemonA = nil
            let rd = try StockRemotedaemon(repo: a, scratch: root, net: net, annex: annex, debug: true)
            stock = rd
            addressOfA = rd.address
        } else {
            let d = try Annexd(net: net, annex: annex)
            daemonA = d
            try Self.serve(a, on: d, net: net)
            addressOfA = try #require(try d.json("invite --repo \(a) --name b")["address"]?.stringValue)
        }
        try Self.serve(b, on: daemonB, net: net)
        _ = try daemonB.process.call("peer.link", ["repo": .string(b), "name": "a", "address": .string(addressOfA)])
        if let daemonA {
            let addressOfB = try #require(try daemonB.json("invite --repo \(b) --name a")["address"]?.stringValue)
            _ = try daemonA.process.call("peer.link", ["repo": .string(a), "name": "b", "address": .string(addressOfB)])
        }
    }

    private static func serve(_ repo: String, on d: Annexd, net: OnionNetwork) throws {
        let info = try d.json("repo add \(repo)")
        try net.map("\(info["onion"]!.stringValue!):\(info["port"]!.intValue!)", to: info["socket"]!.stringValue!)
    }

    /// Links the stock side (`a`) back to `b` as remote `b`: `git annex p2p --link` with an
    /// invitation of `b`'s daemon, through the stand-in, then RELOAD, so that its remotedaemon
    /// (which watches only the remotes it read at start) dials `b` too.
    func linkStockBack() throws {
        let rd = try #require(stock, "linkStockBack needs the stock side (stockA: true)")
        let address = try #require(try daemonB.json("invite --repo \(b) --name a")["address"]?.stringValue)
        try net.run("echo '\(address)' | git annex p2p --link --name b >/dev/null", in: a, annex: annex)
        try rd.reload()
    }

    /// Seconds until `done` held, checked every 50 ms; nil when it did not within `timeout`.
    static func within(_ timeout: Double, _ done: () throws -> Bool) rethrows -> Double? {
        let start = Date()
        repeat {
            if try done() { return Date().timeIntervalSince(start) }
            usleep(50_000)
        } while Date().timeIntervalSince(start) < timeout
        return nil
    }

    /// sync.run on `d` for `repo`; the whole response (result or error).
    func sync(_ repo: String, on d: Annexd, _ extra: JSONObject = [:]) throws -> JSONValue {
        var params: JSONObject = ["repo": .string(repo)]
        for (k, v) in extra { params[k] = v }
        return try d.process.response("sync.run", .object(params), timeout: 120)
    }

    /// Adds and commits a new annexed file `name` in `repo`; the commit.
    @discardableResult
    func commit(_ name: String, in repo: String) throws -> String {
        try sh("echo \(name) > \(name) && git annex add -q \(name) && git commit -qm \(name) && git rev-parse HEAD", in: repo, annex: annex)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func uuid(_ repo: String) throws -> String {
        try sh("git config annex.uuid", in: repo).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Whether `commit` is in `ref`'s history in `repo`.
    func has(_ commit: String, in ref: String = "HEAD", of repo: String) -> Bool {
        (try? sh("git merge-base --is-ancestor \(commit) \(ref) && echo yes", in: repo, allowFailure: true))?.contains("yes") ?? false
    }
}
