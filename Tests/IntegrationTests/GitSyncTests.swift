#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// GitSync against a stand-in for `annexd git-connect` that fails as it does when a peer is
/// down: git annex sync exits 0 even so (both versions), and the pull must still fail, with
/// git-connect's code.
@Suite(.serialized, .timeLimit(minutes: 10)) struct GitSyncTests {
    @Test(arguments: TestEnvironment.gitAnnexVersions)
    func aFetchThatFailsInsideGitAnnexSyncIsAFailure(annex: TestEnvironment.GitAnnex) throws {
        let scratch = Scratch("annexd-gitsync")
        let fake = scratch.path + "/fake-annexd"
        try "#!/bin/sh\necho \"$*\" >> \(scratch.path)/calls\necho 'annexd git-connect: tor could not connect to the peer [peer_unreachable]' >&2\nexit 128\n"
            .write(toFile: fake, atomically: true, encoding: .utf8)
        chmod(fake, 0o755)
        let onion = OnionKey.generate().onionAddress
        try sh("""
            git init -q -b main r && cd r && git annex init -q r && git commit -q --allow-empty -m x
            git remote add p tor-annex::\(onion):1234
            """, in: scratch.path, annex: annex)
        let repo = try AnnexRepo(path: scratch.path + "/r")
        // The daemon's git-annex is the one first in its PATH.
        var transport = GitOverTor(annexd: fake, socks: (host: "127.0.0.1", port: 9))
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = annex.binDir + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        transport.baseEnvironment = env
        let git = GitSync(repo: repo, transport: transport)
        #expect(throws: TransferFailure(code: "peer_unreachable", message: "tor could not connect to the peer")) {
            _ = try git.pull("p")
        }
        // It was tried once: a peer that cannot be reached is not tried again.
        let calls = try String(contentsOfFile: scratch.path + "/calls", encoding: .utf8)
        #expect(calls == "git-connect git-upload-pack \(onion):1234\n", "\(annex): \(calls)")
    }
}
