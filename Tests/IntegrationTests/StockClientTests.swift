import Foundation
import Testing
@testable import AnnexdKit

/// Stock git-annex clients (both versions) using a repository served by
/// `annexd p2p-stdio` in place of `git-annex-shell p2pstdio`.
@Suite(.serialized, .timeLimit(minutes: 10)) struct StockClientTests {
    static let versions = TestEnvironment.gitAnnexVersions

    @Test(arguments: versions)
    func getCopyDropFsckAgainstNonBareServer(annex: TestEnvironment.GitAnnex) throws {
        let pair = try RepoPair(annex: annex)
        let serverUUID = try pair.uuid(of: pair.server)
        let clientUUID = try pair.uuid(of: pair.client)
        try pair.server("""
            head -c 1048576 /dev/urandom > big && printf 'hello\\n' > small && mkdir -p 'sub dir' && printf 'spaced' > 'sub dir/a b.txt'
            git annex add -q big small 'sub dir' && git commit -qm add
            """)
        try pair.client("git fetch -q origin && git merge -q origin/$(git -C ../server symbolic-ref --short HEAD)")

        // get: byte-identical content, logs true on both sides.
        try pair.client("git annex get big small 'sub dir/a b.txt'")
        for f in ["big", "small", "sub dir/a b.txt"] {
            #expect(sameBytes("\(pair.client)/\(f)", "\(pair.server)/\(f)"), "\(f) differs")
        }
        let bigKey = try pair.client("git annex lookupkey big").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try pair.whereis(bigKey, in: pair.client) == [serverUUID, clientUUID])

        // copy --to: the server stores, verifies and logs it.
        try pair.client("head -c 300000 /dev/urandom > new && git annex add -q new && git commit -qm new && git annex copy --to origin new")
        let newKey = try pair.client("git annex lookupkey new").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try pair.whereis(newKey, in: pair.server).contains(serverUUID))
        #expect(try pair.whereis(newKey, in: pair.client).contains(serverUUID))
        let stored = try pair.server("git annex contentlocation \(newKey)").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(sameBytes("\(pair.server)/\(stored)", "\(pair.client)/new"))
        try pair.server("git annex fsck --key \(newKey)")

        // fsck --from: the client checks the server's copy through the protocol.
        try pair.client("git annex fsck --from origin big new")

        // drop --from: gone from the server, and its log says so.
        try pair.client("git annex drop --from origin new")
        #expect(!(try pair.whereis(newKey, in: pair.server).contains(serverUUID)))
        #expect(!(try pair.whereis(newKey, in: pair.client).contains(serverUUID)))
        #expect(try pair.server("git annex contentlocation \(newKey)", allowFailure: true).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)

        // A local drop on the client needs LOCKCONTENT on the server.
        let smallObject = pair.client + "/.git/annex/objects/" + (try pair.client(
            "git annex examinekey --format='${hashdirmixed}${key}/${key}' $(git annex lookupkey small)")).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(FileManager.default.fileExists(atPath: smallObject), "before the drop: \(smallObject)")
        try pair.client("git annex drop small")
        #expect(!FileManager.default.fileExists(atPath: smallObject), "after the drop: \(smallObject)")

        // sync --content moves everything both ways.
        try pair.client("git annex sync --content")
        try pair.server("git merge -q synced/master 2>/dev/null || true; git annex fsck")
        #expect(try pair.whereis(newKey, in: pair.server).contains(serverUUID))
    }

    @Test(arguments: versions)
    func copyToBareServer(annex: TestEnvironment.GitAnnex) throws {
        let pair = try RepoPair(annex: annex, bareServer: true)
        let serverUUID = try pair.uuid(of: pair.server)
        try pair.client("head -c 200000 /dev/urandom > f && git annex add -q f && git commit -qm f && git annex copy --to origin f")
        let key = try pair.client("git annex lookupkey f").trimmingCharacters(in: .whitespacesAndNewlines)
        let lower = try pair.client("git annex examinekey --format='${hashdirlower}' \(key)").trimmingCharacters(in: .whitespacesAndNewlines)
        let object = "\(pair.server)/annex/objects/\(lower)\(key)/\(key)"
        #expect(sameBytes(object, "\(pair.client)/f"), "bare layout: \(object)")
        #expect(try pair.whereis(key, in: pair.server).contains(serverUUID))
        try pair.server("git annex fsck --key \(key)")
        try pair.client("git annex drop f && git annex get f && git annex drop --from origin f --force")
        #expect(!FileManager.default.fileExists(atPath: object))
    }
}
