#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// `annex-cli remote add` links an annexd repository to a peer — another
/// annexd, or stock `git annex remotedaemon` — through tor's SOCKS port (here
/// the stand-in), and stock git-annex then uses the new remote.
@Suite(.serialized, .timeLimit(minutes: 10)) struct RemoteAddTests {
    typealias Annexd = DaemonTorAnnexTests.Annexd

    @Test func linkToAnotherAnnexd() throws {
        let annex = TestEnvironment.gitAnnexVersions[0]
        let net = try OnionNetwork()
        let a = try Annexd(net: net), b = try Annexd(net: net)
        let root = a.scratch.path
        try sh("""
            git init -q repoB && cd repoB && git annex init -q B && printf 'from B\\n' > f && git annex add -q f && git commit -qm f
            cd .. && git init -q repoA && cd repoA && git annex init -q A
            """, in: root, annex: annex)
        let infoB = try b.json("repo add \(root)/repoB")
        try net.map("\(infoB["onion"]!.stringValue!):\(infoB["port"]!.intValue!)", to: infoB["socket"]!.stringValue!)
        _ = try a.json("repo add \(root)/repoA")
        let address = try #require(try b.json("invite --repo \(root)/repoB --name A")["address"]?.stringValue)

        // The token goes through standard input, not the command line.
        let linked = try sh("echo \(address) | \(Posix.dirname(TestEnvironment.annexd))/annex-cli remote add b - --repo \(root)/repoA --json",
                            in: root, env: ["ANNEXD_SOCKET": a.socket])
        let uuidB = try sh("git config annex.uuid", in: root + "/repoB").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(linked.contains("\"uuid\":\"\(uuidB)\""), "\(linked)")
        #expect(try sh("git config remote.b.annex-uuid", in: root + "/repoA").trimmingCharacters(in: .whitespacesAndNewlines) == uuidB)
        let listed = try a.cli("remote list --repo \(root)/repoA --json")
        #expect(listed.contains("\"name\":\"b\""))

        try net.run("git fetch -q b && git merge -q b/$(git -C ../repoB symbolic-ref --short HEAD) && git annex get f", in: root + "/repoA", annex: annex)
        #expect(try String(contentsOfFile: root + "/repoA/f", encoding: .utf8) == "from B\n")

        // Wrong token, unknown onion, malformed address: each refused, nothing added.
        let wrongToken = String(address.dropLast(128)) + AuthToken.generate().value
        for (bad, reason) in [(wrongToken, "auth_failed"),
                              ("tor-annex::\(OnionNetwork.fakeOnionValid()):1234:\(AuthToken.generate().value)", "peer_unreachable"),
                              ("tor-annex::nope.onion:1:abc", "invalid_address")] {
            let out = try a.cli("remote add bad \(bad) --repo \(root)/repoA --json", allowFailure: true)
            #expect(out.contains("\"reason\":\"\(reason)\""), "\(bad): \(out)")
            #expect(try sh("git config remote.bad.url", in: root + "/repoA", allowFailure: true).isEmpty)
        }
        try a.cli("remote remove b --repo \(root)/repoA")
        #expect(try sh("git config remote.b.url", in: root + "/repoA", allowFailure: true).isEmpty)
    }

    /// git annex remotedaemon finds its socket only through /etc/tor/torrc, which the test bind-mounts.
    @Test(.enabled(if: getuid() == 0, "serving with stock remotedaemon needs root (a mount namespace to bind-mount /etc/tor/torrc)"),
          arguments: TestEnvironment.gitAnnexVersions)
    func linkToStockRemotedaemon(annex: TestEnvironment.GitAnnex) throws {
        let net = try OnionNetwork()
        let a = try Annexd(net: net)
        let root = a.scratch.path
        try sh("""
            git init -q rd && cd rd && git annex init -q rd && printf 'from remotedaemon\\n' > g && git annex add -q g && git commit -qm g
            cd .. && git init -q repoA && cd repoA && git annex init -q A
            """, in: root, annex: annex)
        let rdUUID = try sh("git config annex.uuid", in: root + "/rd").trimmingCharacters(in: .whitespacesAndNewlines)
        let rd = try StockRemotedaemon(repo: root + "/rd", scratch: root, net: net, annex: annex)
        defer { rd.stop() }
        let rdAddress = rd.address

        _ = try a.json("repo add \(root)/repoA")
        let linked = try a.cli("remote add rd \(rdAddress) --repo \(root)/repoA --json")
        #expect(linked.contains("\"uuid\":\"\(rdUUID)\""), "\(linked)")
        // The branches come over the local path (git over remotedaemon's CONNECT relay is
        // stock git-annex talking to stock git-annex, and not what this test is about);
        // the content comes through the new tor-annex remote.
        try net.run("git fetch -q ../rd && git merge -q FETCH_HEAD && git fetch -q ../rd git-annex:refs/remotes/rd/git-annex && git annex get --from rd g",
                    in: root + "/repoA", annex: annex)
        #expect(try String(contentsOfFile: root + "/repoA/g", encoding: .utf8) == "from remotedaemon\n")
    }
}
