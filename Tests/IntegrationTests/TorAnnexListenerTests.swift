import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// Stock git-annex clients with tor-annex remotes (made by `git annex p2p --link`)
/// reach annexd's authenticated P2P listener through a SOCKS5 stand-in for tor.
@Suite(.serialized, .timeLimit(minutes: 10)) struct TorAnnexListenerTests {
    @Test(arguments: TestEnvironment.gitAnnexVersions)
    func stockTorAnnexRemoteUsesTheListener(annex: TestEnvironment.GitAnnex) throws {
        let net = try OnionNetwork()
        let scratch = Scratch("annexd-toranx")
        let root = scratch.path
        try sh("""
            git init -q server && cd server && git annex init -q server
            head -c 500000 /dev/urandom > big && printf 'hi\\n' > small && git annex add -q big small && git commit -qm add
            cd .. && git init -q client && cd client && git annex init -q client
            """, in: root, annex: annex)
        let repo = try AnnexRepo(path: root + "/server")
        let store = ObjectStore(repo: repo)
        defer { store.log.close() }
        let socket = root + "/p2p.sock"
        let listener = P2PListener(socketPath: socket, store: store, authenticator: RepoAuthenticator(repo: repo),
                                   report: { _ in })
        try listener.start()
        defer { listener.stop() }

        let onion = OnionNetwork.fakeOnion()
        try net.map("\(onion):5000", to: socket)
        let token = AuthToken.generate()
        var auth = P2PAuthFile(text: "")
        auth.add(token, address: "tor-annex::\(onion):5000")
        try Posix.makeDirectories(repo.gitDir + "/annex/creds")
        try StateDirectory.writeAtomically(RepoAuthenticator.authFilePath(repo), Array(auth.text.utf8))

        // git annex p2p --link verifies the address by connecting and authenticating.
        try net.run("echo tor-annex::\(onion):5000:\(token.value) | git annex p2p --link --name peer",
                    in: root + "/client", annex: annex)
        try net.run("git fetch -q peer && git merge -q peer/$(git -C ../server symbolic-ref --short HEAD)",
                    in: root + "/client", annex: annex)
        try net.run("git annex get big small", in: root + "/client", annex: annex)
        #expect(sameBytes(root + "/client/big", root + "/server/big"))
        try net.run("head -c 300000 /dev/urandom > new && git annex add -q new && git commit -qm new && git annex copy --to peer new",
                    in: root + "/client", annex: annex)
        let newKey = try AnnexKey(parsing: try sh("git annex lookupkey new", in: root + "/client").trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(store.isPresent(newKey))
        try net.run("git annex drop --from peer new", in: root + "/client", annex: annex)
        #expect(!store.isPresent(newKey))
        try net.run("git push -q peer HEAD:refs/heads/from-client", in: root + "/client", annex: annex)
        #expect(try sh("git rev-parse --verify -q refs/heads/from-client", in: root + "/server", allowFailure: true).count >= 40)

        // A wrong token never gets in.
        let wrong = AuthToken.generate()
        let out = try net.run("echo tor-annex::\(onion):5000:\(wrong.value) | git annex p2p --link --name intruder",
                              in: root + "/client", annex: annex, allowFailure: true)
        #expect(try sh("git config remote.intruder.url", in: root + "/client", allowFailure: true).isEmpty, "\(out)")
    }
}
