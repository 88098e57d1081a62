import Testing
@testable import Shared

@Suite struct MessageTests {
    static let key = "SHA256E-s6--5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03.txt"

    @Test(arguments: [
        "AUTH 11111111-1111-4111-8111-111111111111 abcdef", "AUTH-SUCCESS u", "AUTH-FAILURE", "VERSION 4",
        "BYPASS a b", "CONNECT git-upload-pack", "CONNECTDONE 0", "CONNECTDONE -1", "NOTIFYCHANGE",
        "CHANGED refs/heads/master refs/heads/git-annex", "CHECKPRESENT \(key)", "LOCKCONTENT \(key)",
        "UNLOCKCONTENT", "REMOVE \(key)", "REMOVE-BEFORE 300 \(key)", "GETTIMESTAMP", "TIMESTAMP 12",
        "GET 0 dir/file%name.txt \(key)", "GET 5  \(key)", "PUT  \(key)", "PUT a \(key)", "PUT-FROM 3",
        "ALREADY-HAVE", "ALREADY-HAVE-PLUS u1 u2", "SUCCESS", "SUCCESS-PLUS u1", "FAILURE",
        "FAILURE-PLUS u1", "DATA 100", "DATA-PRESENT", "VALID", "INVALID", "ERROR some text here",
    ])
    func roundTrips(line: String) throws {
        let m = try P2PMessage.parse(line)
        #expect(m.wireLine == line)
    }

    @Test func emptyAssociatedFileIsAnEmptyField() throws {
        let m = try P2PMessage.parse("GET 0  \(Self.key)")
        guard case .get(0, "", let k) = m else { Issue.record("parsed as \(m)"); return }
        #expect(k.serialized == Self.key)
    }

    @Test(arguments: [
        ("FROB", P2PParseError.unknownCommand),
        ("", .unknownCommand),
        ("SUCCESS extra", .unknownCommand),
        ("CHECKPRESENT", .unknownCommand),
        ("GET 0 \(key)", .unknownCommand),
        ("GET x f \(key)", .malformed("GET: \"x\" is not a number")),
        ("GET -1 f \(key)", .malformed("GET: \"-1\" is not a number")),
        ("DATA abc", .malformed("DATA: \"abc\" is not a number")),
        ("VERSION x", .malformed("VERSION: \"x\" is not a number")),
    ])
    func refusesMalformed(line: String, error: P2PParseError) {
        #expect(throws: error) { try P2PMessage.parse(line) }
    }

    @Test func invalidKeyIsNamed() {
        #expect(throws: P2PParseError.invalidKey(KeyError(key: "SHA256E-s6--a/b", reason: "contains '/'"))) {
            try P2PMessage.parse("CHECKPRESENT SHA256E-s6--a/b")
        }
    }
}

@Suite struct LineBufferTests {
    @Test func splitsLinesAcrossChunks() throws {
        var b = LineBuffer()
        b.append(Array("VERS".utf8))
        #expect(try b.nextLine() == nil)
        b.append(Array("ION 1\nDATA 3\nabcSUCCESS\n".utf8))
        #expect(try b.nextLine() == "VERSION 1")
        #expect(try b.nextLine() == "DATA 3")
        let payload = b.takeBytes(max: 3) { Array($0) }
        #expect(payload == Array("abc".utf8))
        #expect(try b.nextLine() == "SUCCESS")
        #expect(try b.nextLine() == nil)
    }

    @Test func acceptsTheLongestLegalLine() throws {
        var b = LineBuffer()
        b.append([UInt8](repeating: 65, count: LineBuffer.maxLineLength) + [10])
        #expect(try b.nextLine()?.utf8.count == LineBuffer.maxLineLength)
    }

    @Test func refusesOverlongLineWithoutWaitingForNewline() {
        var b = LineBuffer()
        b.append([UInt8](repeating: 65, count: LineBuffer.maxLineLength + 1))
        #expect(throws: LineBuffer.LineError.tooLong) { try b.nextLine() }
    }

    @Test func refusesInvalidUTF8() {
        var b = LineBuffer()
        b.append([0xff, 0xfe, 10])
        #expect(throws: LineBuffer.LineError.notUTF8) { try b.nextLine() }
    }
}

@Suite struct ServerMachineAuthTests {
    static let key = try! AnnexKey(parsing: MessageTests.key)

    /// Every message a peer could send before AUTH, and what it must never cause.
    static let probes: [P2PMessage] = [
        .checkPresent(key), .lockContent(key), .remove(key), .removeBefore(timestamp: 9, key: key),
        .get(offset: 0, file: "", key: key), .put(file: "", key: key), .connect(service: "git-upload-pack"),
        .connect(service: "git-receive-pack"), .notifyChange, .version(4), .getTimestamp, .data(length: 10),
        .valid, .unlockContent, .bypass(["x"]), .error("x"),
    ]

    @Test(arguments: probes)
    func noLocalActionBeforeAuth(probe: P2PMessage) {
        var m = P2PServerMachine(config: .init(serverUUID: "s"))
        #expect(m.start().isEmpty)
        let actions = m.receive(probe)
        #expect(!actions.contains { if case .local = $0 { return true }; if case .effect = $0 { return true }; return false })
        #expect(m.isClosed)
    }

    @Test func authFailuresAreCapped() {
        var m = P2PServerMachine(config: .init(serverUUID: "s", maxAuthAttempts: 3))
        for attempt in 1...3 {
            #expect(m.receive(.auth(uuid: "c", token: "t\(attempt)")) == [.local(.checkAuth(clientUUID: "c", token: "t\(attempt)"))])
            let r = m.complete(.authenticated(false))
            #expect(r.first == .send(.authFailure))
            #expect(m.isClosed == (attempt == 3))
        }
        #expect(!m.isAuthenticated)
    }

    @Test func authSuccessOpensTheSession() {
        var m = P2PServerMachine(config: .init(serverUUID: "s"))
        _ = m.receive(.auth(uuid: "c", token: "t"))
        #expect(m.complete(.authenticated(true)) == [.send(.authSuccess(uuid: "s"))])
        #expect(m.isAuthenticated && m.clientUUID == "c")
        #expect(m.receive(.checkPresent(Self.key)) == [.local(.checkPresent(Self.key))])
    }

    @Test func readOnlyRefusesWrites() {
        var m = P2PServerMachine(config: .init(serverUUID: "s", readOnly: true, preauthenticated: true))
        let refusal = P2PServerMachine.Action.send(.error("this repository is read-only; write access denied"))
        #expect(m.receive(.put(file: "", key: Self.key)) == [refusal])
        #expect(m.receive(.remove(Self.key)) == [refusal])
        #expect(m.receive(.connect(service: "git-receive-pack")) == [refusal])
        #expect(m.receive(.get(offset: 0, file: "", key: Self.key)) == [.local(.openContent(Self.key, offset: 0))])
    }

    @Test func versionIsNegotiatedDown() {
        var m = P2PServerMachine(config: .init(serverUUID: "s", preauthenticated: true))
        #expect(m.receive(.version(99)) == [.send(.version(4))])
        #expect(m.receive(.version(1)) == [.send(.version(1))])
        #expect(m.version == 1)
    }
}
