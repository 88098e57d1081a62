import Foundation
import Testing
@testable import AnnexdKit

/// Hostile and broken input to `annexd p2p-stdio`: every bad line is refused with
/// the exact ERROR annexd sends, and nothing is stored, lost or written outside
/// the annex. Each test drives its own session against a repository made by
/// stock git-annex.
@Suite(.timeLimit(minutes: 10)) struct P2PStdioBadInputTests {
    static let hello = bytes("hello world\n")

    // MARK: Framing

    @Test func overlongLineClosesTheConnection() throws {
        let repo = try TestRepo()
        let key = try repo.addFile("f", Self.hello)
        let before = repo.annexFiles()
        let p = try repo.session()

        // The longest line allowed (32767 bytes) is read and answered; the session goes on.
        let longest = "CHECKPRESENT SHA256E-s1--" + String(repeating: "a", count: 32767 - 25)
        #expect(longest.utf8.count == 32767)
        let answer = try #require(try p.request(longest))
        #expect(answer.hasPrefix("ERROR invalid key \"SHA256E-s1--aaaa"))
        #expect(answer.hasSuffix("…\": longer than 255 bytes"))

        // One byte more and the connection ends, as git-annex's does.
        try p.sendRaw(bytes("PUT  SHA256E-s1--") + [UInt8](repeating: UInt8(ascii: "b"), count: 40000) + [10])
        #expect(try p.readLine() == "ERROR protocol line longer than 32767 bytes")
        #expect(try p.readToEOF() == [])
        #expect(try p.waitForExit() == 0)
        #expect(repo.annexFiles() == before)
        #expect(repo.contents(try repo.objectPath(key)) == Self.hello)
    }

    @Test func nonUTF8LineClosesTheConnection() throws {
        let repo = try TestRepo()
        let before = repo.annexFiles()
        let p = try repo.session()
        try p.sendRaw(bytes("CHECKPRESENT SHA256E-s1--") + [0xff, 0xfe] + [10])
        #expect(try p.readLine() == "ERROR protocol line is not UTF-8")
        #expect(try p.readToEOF() == [])
        #expect(try p.waitForExit() == 0)
        #expect(repo.annexFiles() == before)
    }

    // MARK: Commands

    @Test func unknownCommandKeepsTheSessionOpen() throws {
        let repo = try TestRepo()
        let key = try repo.addFile("f", Self.hello)
        let p = try repo.session()
        #expect(try p.request("FROBNICATE now") == "ERROR unknown command")
        #expect(try p.request("CHECKPRESENT") == "ERROR unknown command")        // missing its key
        #expect(try p.request("NOTIFYCHANGE please") == "ERROR unknown command")  // takes no argument
        #expect(try p.request("checkpresent \(key)") == "ERROR unknown command")  // case matters
        #expect(try p.request("CHECKPRESENT \(key)") == "SUCCESS")
        #expect(try p.request("CHECKPRESENT \(sha256Key(bytes("absent")))") == "FAILURE")
        p.closeStdin()
        #expect(try p.readToEOF() == [])
        #expect(try p.waitForExit() == 0)
    }

    @Test func commandsOutOfPlaceAreUnexpected() throws {
        let repo = try TestRepo()
        let key = try repo.addFile("f", Self.hello)
        let before = repo.annexFiles()
        let p = try repo.session()
        for line in ["VALID", "INVALID", "SUCCESS", "FAILURE", "UNLOCKCONTENT", "PUT-FROM 0", "ALREADY-HAVE",
                     "DATA 0", "AUTH-SUCCESS \(P2PProcess.defaultClientUUID)", "TIMESTAMP 5", "CONNECTDONE 0",
                     // v3 commands in a v0 session
                     "GETTIMESTAMP", "REMOVE-BEFORE 99999999999 \(key)",
                     // v2 BYPASS in a v0 session
                     "BYPASS \(P2PProcess.defaultClientUUID)"] {
            #expect(try p.request(line) == "ERROR unexpected command", "\(line)")
        }
        #expect(try p.request("CONNECT git-frobnicate-pack") == "ERROR unsupported service git-frobnicate-pack")
        #expect(try p.request("VERSION 1") == "VERSION 1")
        #expect(try p.request("REMOVE-BEFORE 99999999999 \(key)") == "ERROR unexpected command")  // still below v3
        #expect(try p.request("CHECKPRESENT \(key)") == "SUCCESS")
        p.closeStdin()
        #expect(try p.waitForExit() == 0)
        #expect(repo.annexFiles() == before)
    }

    @Test func pathLikeKeysAreRefused() throws {
        let repo = try TestRepo()
        let key = try repo.addFile("f", Self.hello)
        let before = repo.annexFiles()
        let p = try repo.session()
        #expect(try p.request("VERSION 1") == "VERSION 1")
        let cases: [(line: String, error: String)] = [
            ("CHECKPRESENT SHA256E-s1--a/b", #"ERROR invalid key "SHA256E-s1--a/b": contains '/'"#),
            ("CHECKPRESENT SHA256E-s1--evil\u{0}", #"ERROR invalid key "SHA256E-s1--evil\x0": contains a NUL byte"#),
            ("CHECKPRESENT SHA256E-s1--..evil", #"ERROR invalid key "SHA256E-s1--..evil": contains '..'"#),
            ("PUT  SHA256E-s1--../../../evil", #"ERROR invalid key "SHA256E-s1--../../../evil": contains '/'"#),
            ("PUT  SHA256E-s1--..evil", #"ERROR invalid key "SHA256E-s1--..evil": contains '..'"#),
            ("PUT  SHA256E-s1--evil\u{0}x", #"ERROR invalid key "SHA256E-s1--evil\x0x": contains a NUL byte"#),
            ("PUT  ..", #"ERROR invalid key "..": contains '..'"#),
            ("PUT  /etc/evil", #"ERROR invalid key "/etc/evil": contains '/'"#),
            ("GET 0  SHA256E-s1--../../../evil", #"ERROR invalid key "SHA256E-s1--../../../evil": contains '/'"#),
            ("GET 0  SHA256E-s1--..evil", #"ERROR invalid key "SHA256E-s1--..evil": contains '..'"#),
            ("GET 0  SHA256E-s1--evil\u{0}", #"ERROR invalid key "SHA256E-s1--evil\x0": contains a NUL byte"#),
            ("LOCKCONTENT SHA256E-s1--../evil", #"ERROR invalid key "SHA256E-s1--../evil": contains '/'"#),
            ("REMOVE ../\(key)", "ERROR invalid key \"../\(key)\": contains '/'"),
        ]
        for c in cases {
            #expect(try p.request(c.line) == c.error, "\(c.line.debugDescription)")
        }
        // The session is still in its top state: a PUT after all that is answered normally.
        #expect(try p.request("CHECKPRESENT \(key)") == "SUCCESS")
        p.closeStdin()
        #expect(try p.waitForExit() == 0)
        #expect(repo.filesNamed(containing: "evil") == [])
        #expect(repo.annexFiles() == before)
    }

    @Test func malformedNumbersAreRefused() throws {
        let repo = try TestRepo()
        let key = try repo.addFile("f", Self.hello)
        let newKey = sha256Key(bytes("new"), ext: ".txt")
        let before = repo.annexFiles()
        let p = try repo.session()
        #expect(try p.request("VERSION x") == #"ERROR VERSION: "x" is not a number"#)
        #expect(try p.request("VERSION -1") == #"ERROR VERSION: "-1" is not a number"#)
        #expect(try p.request("VERSION 3") == "VERSION 3")
        #expect(try p.request("GET x  \(key)") == #"ERROR GET: "x" is not a number"#)
        #expect(try p.request("GET -1  \(key)") == #"ERROR GET: "-1" is not a number"#)
        #expect(try p.request("GET 007  \(key)") == #"ERROR GET: "007" is not a number"#)
        #expect(try p.request("GET 99999999999999999999  \(key)") == #"ERROR GET: "99999999999999999999" is not a number"#)
        #expect(try p.request("REMOVE-BEFORE soon \(key)") == #"ERROR REMOVE-BEFORE: "soon" is not a number"#)

        // A bad DATA header ends the PUT: the client saw ERROR, so both sides are back at the top.
        #expect(try p.request("PUT  \(newKey)") == "PUT-FROM 0")
        #expect(try p.request("DATA abc") == #"ERROR DATA: "abc" is not a number"#)
        #expect(try p.request("CHECKPRESENT \(newKey)") == "FAILURE")
        #expect(try p.request("PUT  \(newKey)") == "PUT-FROM 0")
        #expect(try p.request("DATA -3") == #"ERROR DATA: "-3" is not a number"#)
        // A well-formed message that is not DATA ends it too.
        #expect(try p.request("PUT  \(newKey)") == "PUT-FROM 0")
        #expect(try p.request("CHECKPRESENT \(newKey)") == "ERROR expected DATA")
        #expect(try p.request("CHECKPRESENT \(key)") == "SUCCESS")
        p.closeStdin()
        #expect(try p.waitForExit() == 0)
        #expect(repo.annexFiles() == before)
        #expect(!FileManager.default.fileExists(atPath: repo.partialPath(newKey)))
    }

    // MARK: PUT

    @Test func shortDataKeepsThePartialAndResumes() throws {
        let repo = try TestRepo()
        let content = bytes("0123456789abcdef")
        let key = sha256Key(content, ext: ".bin")
        let object = try repo.objectPath(key)

        let p = try repo.session()
        #expect(try p.request("VERSION 1") == "VERSION 1")
        #expect(try p.request("PUT  \(key)") == "PUT-FROM 0")
        try p.send("DATA \(content.count)")
        try p.sendRaw(Array(content[..<6]))
        p.closeStdin()
        #expect(try p.readToEOF() == [])
        #expect(try p.waitForExit() == 0)
        #expect(p.stderr.contains("6 of 16 bytes"), "\(p.stderr)")
        #expect(repo.contents(repo.partialPath(key)) == Array(content[..<6]))
        #expect(!FileManager.default.fileExists(atPath: object))

        // A new session offers to resume from what is kept, and completing it stores verified content.
        let q = try repo.session()
        #expect(try q.request("VERSION 1") == "VERSION 1")
        #expect(try q.request("PUT  \(key)") == "PUT-FROM 6")
        try q.send("DATA 10")
        try q.sendRaw(Array(content[6...]))
        #expect(try q.request("VALID") == "SUCCESS")
        #expect(try q.request("CHECKPRESENT \(key)") == "SUCCESS")
        q.closeStdin()
        #expect(try q.waitForExit() == 0)
        #expect(repo.contents(object) == content)
        #expect(!FileManager.default.fileExists(atPath: repo.partialPath(key)))
        try repo.shell("git annex fsck -q --key '\(key)'")
    }

    @Test func resumedPartialIsVerifiedEvenWithoutAnnexVerify() throws {
        // git-annex forces verification of a resumed transfer: the kept prefix may be stale.
        let repo = try TestRepo()
        try repo.shell("git config annex.verify false")
        let content = bytes("0123456789abcdef")
        let key = sha256Key(content, ext: ".bin")
        try FileManager.default.createDirectory(atPath: repo.path + "/.git/annex/tmp", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: repo.partialPath(key), contents: Data("XXXXXX".utf8))
        let p = try repo.session()
        #expect(try p.request("VERSION 1") == "VERSION 1")
        #expect(try p.request("PUT  \(key)") == "PUT-FROM 6")
        try p.send("DATA 10")
        try p.sendRaw(Array(content[6...]))
        #expect(try p.request("VALID") == "FAILURE")
        p.closeStdin()
        #expect(try p.waitForExit() == 0)
        #expect(!FileManager.default.fileExists(atPath: try repo.objectPath(key)))
        #expect(!FileManager.default.fileExists(atPath: repo.partialPath(key)))
    }

    @Test func wrongContentIsRefusedAndDiscarded() throws {
        let repo = try TestRepo()
        let content = bytes("right bytes\n")
        let key = sha256Key(content, ext: ".txt")
        let p = try repo.session()
        #expect(try p.request("VERSION 1") == "VERSION 1")

        // Right size, wrong bytes.
        #expect(try p.request("PUT  \(key)") == "PUT-FROM 0")
        try p.send("DATA \(content.count)")
        try p.sendRaw(bytes("wrong bytes\n"))
        #expect(try p.request("VALID") == "FAILURE")
        #expect(!FileManager.default.fileExists(atPath: repo.partialPath(key)))

        // Wrong size.
        #expect(try p.request("PUT  \(key)") == "PUT-FROM 0")
        try p.send("DATA 5")
        try p.sendRaw(Array(content[..<5]))
        #expect(try p.request("VALID") == "FAILURE")
        #expect(!FileManager.default.fileExists(atPath: repo.partialPath(key)))

        #expect(try p.request("CHECKPRESENT \(key)") == "FAILURE")
        p.closeStdin()
        #expect(try p.waitForExit() == 0)
        #expect(!FileManager.default.fileExists(atPath: try repo.objectPath(key)))
        #expect(repo.annexFiles().isEmpty)
        #expect(p.stderr.contains("does not match its checksum"))
    }

    @Test func invalidAfterDataDiscards() throws {
        let repo = try TestRepo()
        let content = bytes("changed while sent\n")
        let key = sha256Key(content, ext: ".txt")
        let p = try repo.session()
        #expect(try p.request("VERSION 1") == "VERSION 1")
        #expect(try p.request("PUT  \(key)") == "PUT-FROM 0")
        try p.send("DATA \(content.count)")
        try p.sendRaw(content)
        #expect(try p.request("INVALID") == "FAILURE")
        #expect(!FileManager.default.fileExists(atPath: repo.partialPath(key)))

        // Anything but VALID/INVALID after the payload: refused and discarded too.
        #expect(try p.request("PUT  \(key)") == "PUT-FROM 0")
        try p.send("DATA \(content.count)")
        try p.sendRaw(content)
        #expect(try p.request("CHECKPRESENT \(key)") == "ERROR expected VALID or INVALID")
        #expect(!FileManager.default.fileExists(atPath: repo.partialPath(key)))
        // An unparseable line there as well.
        #expect(try p.request("PUT  \(key)") == "PUT-FROM 0")
        try p.send("DATA \(content.count)")
        try p.sendRaw(content)
        #expect(try p.request("VALIDATE") == "ERROR unknown command")
        #expect(try p.request("VALID") == "ERROR unexpected command")
        #expect(!FileManager.default.fileExists(atPath: repo.partialPath(key)))

        #expect(try p.request("CHECKPRESENT \(key)") == "FAILURE")
        p.closeStdin()
        #expect(try p.waitForExit() == 0)
        #expect(!FileManager.default.fileExists(atPath: try repo.objectPath(key)))
        #expect(repo.annexFiles().isEmpty)
    }

    @Test func putOfPresentKeyIsAlreadyHave() throws {
        let repo = try TestRepo()
        let key = try repo.addFile("f", Self.hello)
        let object = try repo.objectPath(key)
        let before = repo.annexFiles()
        let mode = try FileManager.default.attributesOfItem(atPath: object)[.posixPermissions] as? Int
        let p = try repo.session()
        #expect(try p.request("VERSION 1") == "VERSION 1")
        #expect(try p.request("PUT f \(key)") == "ALREADY-HAVE")
        // ALREADY-HAVE ends the PUT: DATA now is out of place.
        #expect(try p.request("DATA 0") == "ERROR unexpected command")
        p.closeStdin()
        #expect(try p.waitForExit() == 0)
        #expect(repo.annexFiles() == before)
        #expect(repo.contents(object) == Self.hello)
        #expect(try FileManager.default.attributesOfItem(atPath: object)[.posixPermissions] as? Int == mode)
    }

    @Test func unverifiableBackendNeedsAnnexVerifyOff() throws {
        let repo = try TestRepo()
        let key = "SKEIN256-s3--" + String(repeating: "ab", count: 32)
        let top = try repo.shell("git rev-parse --show-toplevel").trimmingCharacters(in: .whitespacesAndNewlines)
        let p = try repo.session()
        #expect(try p.request("VERSION 1") == "VERSION 1")
        #expect(try p.request("PUT  \(key)")
                == "ERROR cannot verify content of backend SKEIN256 (annexd has no implementation of it); set annex.verify=false in \(top) to accept it unverified")
        #expect(try p.request("CHECKPRESENT \(key)") == "FAILURE")
        p.closeStdin()
        #expect(try p.waitForExit() == 0)
        #expect(repo.annexFiles().isEmpty)

        try repo.shell("git config annex.verify false")
        let q = try repo.session()
        #expect(try q.request("VERSION 1") == "VERSION 1")
        #expect(try q.request("PUT  \(key)") == "PUT-FROM 0")
        try q.send("DATA 3")
        try q.sendRaw(bytes("abc"))
        #expect(try q.request("VALID") == "SUCCESS")
        q.closeStdin()
        #expect(try q.waitForExit() == 0)
        #expect(repo.contents(try repo.objectPath(key)) == bytes("abc"))
    }

    @Test func versionZeroPutNeedsNoValid() throws {
        let repo = try TestRepo()
        let content = bytes("v0 content\n")
        let key = sha256Key(content, ext: ".txt")
        let p = try repo.session()
        #expect(try p.request("PUT  \(key)") == "PUT-FROM 0")
        try p.send("DATA \(content.count)")
        try p.sendRaw(content)
        // No VALID in v0: the answer comes right after the payload.
        #expect(try p.readLine() == "SUCCESS")
        #expect(try p.request("VALID") == "ERROR unexpected command")
        p.closeStdin()
        #expect(try p.waitForExit() == 0)
        #expect(repo.contents(try repo.objectPath(key)) == content)
        try repo.shell("git annex fsck -q --key '\(key)'")
    }

    @Test func versionZeroPutIsVerifiedEvenWithoutAnnexVerify() throws {
        // v0 has no VALID, so, as git-annex, annexd checks the content whatever annex.verify says.
        let repo = try TestRepo()
        try repo.shell("git config annex.verify false")
        let content = bytes("v0 content\n")
        let key = sha256Key(content, ext: ".txt")
        let p = try repo.session()
        #expect(try p.request("PUT  \(key)") == "PUT-FROM 0")
        try p.send("DATA \(content.count)")
        try p.sendRaw(bytes("V0 CONTENT\n"))
        #expect(try p.readLine() == "FAILURE")
        p.closeStdin()
        #expect(try p.waitForExit() == 0)
        #expect(repo.annexFiles().isEmpty)
    }

    // MARK: GET

    @Test func getOfAbsentKeyAndGetWithOffset() throws {
        let repo = try TestRepo()
        let key = try repo.addFile("f", Self.hello)
        let absent = sha256Key(bytes("absent"), ext: ".txt")
        let p = try repo.session()
        #expect(try p.request("VERSION 1") == "VERSION 1")
        #expect(try p.request("GET 0  \(absent)") == "DATA 0")
        #expect(try p.readLine() == "INVALID")
        try p.send("FAILURE")  // the client's verdict; no answer
        #expect(try p.request("GET 6 f \(key)") == "DATA 6")
        #expect(try p.readBytes(6) == bytes("world\n"))
        #expect(try p.readLine() == "VALID")
        try p.send("SUCCESS")
        #expect(try p.request("GET 0 f \(key)") == "DATA \(Self.hello.count)")
        #expect(try p.readBytes(Self.hello.count) == Self.hello)
        #expect(try p.readLine() == "VALID")
        // The verdict must be SUCCESS or FAILURE; anything else ends the GET with an ERROR.
        #expect(try p.request("CHECKPRESENT \(key)") == "ERROR expected SUCCESS or FAILURE")
        #expect(try p.request("CHECKPRESENT \(key)") == "SUCCESS")
        #expect(try p.request("CHECKPRESENT \(absent)") == "FAILURE")

        // v0: no validity after DATA.
        #expect(try p.request("VERSION 0") == "VERSION 0")
        #expect(try p.request("GET 0  \(absent)") == "DATA 0")
        try p.send("FAILURE")
        #expect(try p.request("GET 11 f \(key)") == "DATA 1")
        #expect(try p.readBytes(1) == bytes("\n"))
        try p.send("SUCCESS")
        #expect(try p.request("CHECKPRESENT \(key)") == "SUCCESS")
        p.closeStdin()
        #expect(try p.waitForExit() == 0)
        #expect(repo.contents(try repo.objectPath(key)) == Self.hello)
    }

    // MARK: Read-only and removal

    @Test func readOnlyRefusesChanges() throws {
        let repo = try TestRepo()
        let key = try repo.addFile("f", Self.hello)
        let newKey = sha256Key(bytes("new"), ext: ".txt")
        let before = repo.annexFiles()
        let p = try repo.session(env: ["GIT_ANNEX_SHELL_READONLY": "1"])
        let refusal = "ERROR this repository is read-only; write access denied"
        #expect(try p.request("VERSION 3") == "VERSION 3")
        #expect(try p.request("PUT  \(newKey)") == refusal)
        #expect(try p.request("PUT  \(key)") == refusal)
        #expect(try p.request("REMOVE \(key)") == refusal)
        #expect(try p.request("REMOVE-BEFORE 99999999999 \(key)") == refusal)
        #expect(try p.request("CONNECT git-receive-pack") == refusal)
        // Reading still works.
        #expect(try p.request("CHECKPRESENT \(key)") == "SUCCESS")
        #expect(try p.request("GET 0 f \(key)") == "DATA \(Self.hello.count)")
        #expect(try p.readBytes(Self.hello.count) == Self.hello)
        #expect(try p.readLine() == "VALID")
        try p.send("SUCCESS")
        #expect(try p.request("LOCKCONTENT \(key)") == "SUCCESS")
        try p.send("UNLOCKCONTENT")
        p.closeStdin()
        #expect(try p.waitForExit() == 0)
        #expect(repo.annexFiles().filter { !$0.key.hasSuffix(".lck") } == before)
        #expect(repo.contents(try repo.objectPath(key)) == Self.hello)
    }

    @Test func removeBeforeHonoursTheDeadline() throws {
        let repo = try TestRepo()
        let key = try repo.addFile("f", Self.hello)
        let object = try repo.objectPath(key)
        let p = try repo.session()
        #expect(try p.request("VERSION 3") == "VERSION 3")
        let answer = try #require(try p.request("GETTIMESTAMP"))
        #expect(answer.hasPrefix("TIMESTAMP "))
        let now = try #require(Int64(answer.dropFirst("TIMESTAMP ".count)))
        #expect(now > 0)

        // A deadline already past: nothing removed.
        #expect(try p.request("REMOVE-BEFORE \(now) \(key)") == "FAILURE")
        #expect(try p.request("REMOVE-BEFORE \(now - 100) \(key)") == "FAILURE")
        #expect(repo.contents(object) == Self.hello)
        #expect(try p.request("CHECKPRESENT \(key)") == "SUCCESS")

        // A deadline ahead: removed, and the location log says so.
        #expect(try p.request("REMOVE-BEFORE \(now + 600) \(key)") == "SUCCESS")
        #expect(!FileManager.default.fileExists(atPath: object))
        #expect(try p.request("CHECKPRESENT \(key)") == "FAILURE")
        // Removing absent content succeeds, as in git-annex.
        #expect(try p.request("REMOVE-BEFORE \(now + 600) \(key)") == "SUCCESS")
        p.closeStdin()
        #expect(try p.waitForExit() == 0)
        #expect(repo.annexFiles().isEmpty)
        let uuid = try repo.shell("git config annex.uuid").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!(try repo.shell("git annex whereis --key '\(key)'", allowFailure: true)).contains(uuid))
    }
}
