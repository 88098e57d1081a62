import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// The pure rules of sync.run (which remotes, which refs) and how git reaches peers.
@Suite struct SyncRulesTests {
    let a = RemoteInfo(name: "a", address: "tor-annex::x.onion:1", uuid: "uuid-a")
    let b = RemoteInfo(name: "b", address: "tor-annex::y.onion:2", uuid: "uuid-b")
    let c = RemoteInfo(name: "c", address: "tor-annex::z.onion:3", uuid: nil)

    @Test func selection() throws {
        let remotes = [SyncRules.Remote(info: a), SyncRules.Remote(info: b, ignored: true), SyncRules.Remote(info: c, syncDisabled: true)]
        #expect(try SyncRules.select(remotes, named: nil) == [a])
        #expect(try SyncRules.select(remotes, named: []) == [a])
        // Named: used whatever their settings, by name or UUID, once each.
        #expect(try SyncRules.select(remotes, named: ["c", "uuid-b", "b"]) == [c, b])
        #expect(throws: SyncRules.SelectionError.unknown("nobody")) { try SyncRules.select(remotes, named: ["a", "nobody"]) }
    }

    @Test func branches() {
        let plain = SyncRules.Branch(current: "main")
        #expect(plain.original == "main" && plain.synced == "synced/main")
        let adjusted = SyncRules.Branch(current: "adjusted/main(unlocked)")
        #expect(adjusted.original == "main" && adjusted.synced == "synced/main")
        #expect(SyncRules.pushRefspecs(adjusted) == ["main", "main:synced/main", "+git-annex:synced/git-annex", "git-annex"])
        #expect(SyncRules.pushRefspecs(nil) == ["+git-annex:synced/git-annex", "git-annex"])
        #expect(SyncRules.requiredDestinations(plain) == ["refs/heads/synced/main", "refs/heads/synced/git-annex"])
        #expect(SyncRules.pushChecks(plain, remote: "p").map(\.remote) == ["refs/remotes/p/synced/main", "refs/remotes/p/git-annex"])
    }

    @Test func porcelain() {
        // What git 2.39 printed for a push to a non-bare annexd peer.
        let out = """
        To ext::annexd git-connect %S x.onion:1
        !\trefs/heads/main:refs/heads/main\t[remote rejected] (branch is currently checked out)
        *\trefs/heads/main:refs/heads/synced/main\t[new branch]
        +\trefs/heads/git-annex:refs/heads/synced/git-annex\t1111111...2222222 (forced update)
        =\trefs/heads/git-annex:refs/heads/git-annex\t[up to date]
        Done
        """
        let refs = SyncRules.parsePorcelain(out)
        #expect(refs.map(\.destination) == ["refs/heads/main", "refs/heads/synced/main", "refs/heads/synced/git-annex", "refs/heads/git-annex"])
        #expect(refs.map(\.updated) == [false, true, true, false])
        #expect(refs[0].rejected && refs[0].summary.contains("checked out"))
    }

    @Test func gitGoesThroughAnnexd() {
        var t = GitOverTor(annexd: "/opt/my tools/annexd%1", socks: (host: "127.0.0.1", port: 9150))
        t.baseEnvironment = ["PATH": "/bin", "GIT_CONFIG_COUNT": "5", "GIT_CONFIG_KEY_4": "x", "GIT_CONFIG_VALUE_4": "y"]
        let env = t.environment(repo: "/r")
        #expect(env["PATH"] == "/bin" && env["GIT_CONFIG_KEY_4"] == nil && env["GIT_CONFIG_VALUE_4"] == nil)
        #expect(env["GIT_CONFIG_COUNT"] == "2")
        #expect(env["GIT_CONFIG_KEY_0"] == "protocol.ext.allow" && env["GIT_CONFIG_VALUE_0"] == "always")
        #expect(env["GIT_CONFIG_KEY_1"] == "url.ext::/opt/my% tools/annexd%%1 git-connect %S .insteadOf")
        #expect(env["GIT_CONFIG_VALUE_1"] == "tor-annex::")
        #expect(env["ANNEXD_SOCKS"] == "127.0.0.1:9150" && env["ANNEXD_GIT_REPO"] == "/r")
    }

    @Test func bridgeErrorsAreFoundInGitsStderr() {
        let stderr = """
        annexd git-connect: tor could not connect to x.onion:1: the peer may be offline [peer_unreachable]
        fatal: Could not read from remote repository.

        Please make sure you have the correct access rights
        """
        let f = GitConnectBridge.failure(inStderr: stderr)
        #expect(f?.code == "peer_unreachable" && f?.message == "tor could not connect to x.onion:1: the peer may be offline")
        #expect(GitConnectBridge.failure(inStderr: "fatal: [not ours]") == nil)
        #expect(GitConnectBridge.parseHostPort("127.0.0.1:9050").map { "\($0.host) \($0.port)" } == "127.0.0.1 9050")
        #expect(GitConnectBridge.parseHostPort("9050") == nil && GitConnectBridge.parseHostPort("h:0") == nil)
    }

    @Test func bridgeRefusesBadArguments() {
        for (service, address, env, code) in [
            ("git-frobnicate", "x.onion:1", [String: String](), "invalid_service"),
            ("git-upload-pack", "not-an-onion:1", [:], "invalid_address"),
            ("git-upload-pack", OnionKey.generate().onionAddress + ":1234", [:], "no_socks"),
            ("git-upload-pack", OnionKey.generate().onionAddress + ":1234", ["ANNEXD_SOCKS": "127.0.0.1:9", "ANNEXD_GIT_REPO": "/nonexistent"], "no_repository"),
        ] {
            #expect(throws: Error.self) { _ = try GitConnectBridge.run(service: service, address: address, environment: env, cwd: "/") }
            do { _ = try GitConnectBridge.run(service: service, address: address, environment: env, cwd: "/") } catch {
                #expect(error.code == code, "\(error)")
            }
        }
    }
}
