import Foundation
import Testing
@testable import AnnexdKit

/// CONNECT, NOTIFYCHANGE and DATA-PRESENT on `annexd p2p-stdio`, with real git behind them.
@Suite(.timeLimit(minutes: 10)) struct P2PStdioServicesTests {
    /// Reads DATA frames until the git protocol's flush packet ends the ref advertisement.
    func readAdvertisement(_ p: P2PProcess) throws -> String {
        var text = ""
        while !text.hasSuffix("0000") {
            let line = try #require(try p.readLine(), "EOF inside the ref advertisement")
            let parts = line.split(separator: " ")
            guard parts.count == 2, parts[0] == "DATA", let n = Int(parts[1]) else {
                throw P2PProcess.Failure(description: "expected DATA, got \(line)")
            }
            text += String(decoding: try p.readBytes(n), as: UTF8.self)
        }
        return text
    }

    @Test func connectUploadPackRelaysGit() throws {
        let repo = try TestRepo()
        _ = try repo.addFile("a", bytes("a\n"))
        let head = try repo.shell("git rev-parse HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
        let p = try repo.session()
        try p.send("VERSION 1")
        #expect(try p.readLine() == "VERSION 1")
        try p.send("CONNECT git-upload-pack")
        let adv = try readAdvertisement(p)
        #expect(adv.contains(head), "advertisement lists HEAD: \(adv)")
        #expect(adv.contains("refs/heads/git-annex"))
        // An empty want list (flush) makes upload-pack exit successfully.
        try p.sendRaw(bytes("DATA 4\n0000"))
        #expect(try p.readLine() == "CONNECTDONE 0")
        #expect(try p.readLine() == nil, "the session ends after CONNECTDONE")
        #expect(try p.waitForExit() == 0)
    }

    @Test func connectReceivePackIsRefusedReadOnly() throws {
        let repo = try TestRepo()
        let p = try repo.session(env: ["GIT_ANNEX_SHELL_READONLY": "1"])
        try p.send("CONNECT git-receive-pack")
        #expect(try p.readLine() == "ERROR this repository is read-only; write access denied")
        try p.send("CONNECT git-upload-pack")
        _ = try readAdvertisement(p)
    }

    @Test func connectUnknownServiceIsRefused() throws {
        let repo = try TestRepo()
        let p = try repo.session()
        try p.send("CONNECT sh")
        #expect(try p.readLine() == "ERROR unsupported service sh")
    }

    @Test func notifyChangeAnswersThenWaitsForARefChange() throws {
        let repo = try TestRepo()
        _ = try repo.addFile("a", bytes("a\n"))
        let p = try repo.session()
        try p.send("NOTIFYCHANGE")
        let first = try #require(try p.readLine())
        // As git-annex: commit SHAs (what the refs point at), not ref names.
        let head = try repo.shell("git rev-parse HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(first.hasPrefix("CHANGED ") && first.contains(head) && !first.contains("refs/"), "\(first)")
        try p.send("NOTIFYCHANGE")
        _ = try repo.addFile("b", bytes("b\n"))
        let branch = try repo.shell("git rev-parse HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
        // Adding a file moves refs/annex/last-index, then the branch: one CHANGED each or
        // one for both, depending on timing; a client asks again until it has seen its branch's new commit.
        var seen: [String] = []
        for _ in 0..<3 where !seen.contains(where: { $0.contains(branch) }) {
            if !seen.isEmpty { try p.send("NOTIFYCHANGE") }
            let line = try #require(try p.readLine(timeout: 15))
            #expect(line.hasPrefix("CHANGED "), "\(line)")
            seen.append(line)
        }
        #expect(seen.contains { $0.contains(branch) }, "\(seen)")
    }

    @Test func notifyChangeIsPromptAndEndsWhenTheClientLeaves() throws {
        let repo = try TestRepo()
        _ = try repo.addFile("a", bytes("a\n"))
        let p = try repo.session()
        try p.send("NOTIFYCHANGE")
        _ = try p.readLine()
        // A change is announced within a second (inotify), not after a polling period.
        try p.send("NOTIFYCHANGE")
        usleep(200_000)
        let changedAt = Date()
        _ = try repo.addFile("b", bytes("b\n"))
        #expect(try p.readLine(timeout: 5)?.hasPrefix("CHANGED ") == true)
        #expect(Date().timeIntervalSince(changedAt) < 2.5, "CHANGED took \(Date().timeIntervalSince(changedAt)) s")
        // A client that leaves while waiting ends its session at once.
        try p.send("NOTIFYCHANGE")
        usleep(200_000)
        p.closeStdin()
        _ = try p.waitForExit(timeout: 3)
    }

    @Test func dataPresentAnswersFromTheStore() throws {
        let repo = try TestRepo()
        let content = bytes("stored by another connection\n")
        let key = sha256Key(content, ext: ".txt")
        let a = try repo.session()
        try a.send("VERSION 4")
        #expect(try a.readLine() == "VERSION 4")
        try a.send("PUT  \(key)")
        #expect(try a.readLine() == "PUT-FROM 0")

        // Absent: DATA-PRESENT is answered FAILURE and nothing is stored.
        let b = try repo.session()
        try b.send("VERSION 4")
        #expect(try b.readLine() == "VERSION 4")
        try b.send("PUT  \(key)")
        #expect(try b.readLine() == "PUT-FROM 0")
        try b.send("DATA-PRESENT")
        #expect(try b.readLine() == "FAILURE")

        // Another connection stores it; then DATA-PRESENT succeeds.
        let c = try repo.session()
        try c.send("VERSION 1")
        #expect(try c.readLine() == "VERSION 1")
        try c.send("PUT  \(key)")
        #expect(try c.readLine() == "PUT-FROM 0")
        try c.sendRaw(bytes("DATA \(content.count)\n") + content + bytes("VALID\n"))
        #expect(try c.readLine() == "SUCCESS")
        try a.send("DATA-PRESENT")
        #expect(try a.readLine() == "SUCCESS")
        #expect(repo.contents(try repo.objectPath(key)) == content)
    }

    @Test func dataPresentNeedsVersion4() throws {
        let repo = try TestRepo()
        let key = sha256Key(bytes("x"), ext: nil)
        let p = try repo.session()
        try p.send("VERSION 1")
        #expect(try p.readLine() == "VERSION 1")
        try p.send("PUT  \(key)")
        #expect(try p.readLine() == "PUT-FROM 0")
        try p.send("DATA-PRESENT")
        #expect(try p.readLine() == "ERROR expected DATA")
    }
}
