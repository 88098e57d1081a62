import Foundation
import Testing
import TranscriptSupport
@testable import Shared

// Replays of real git-annex P2P sessions (TranscriptSupport/transcripts, see its README.md)
// against annexd's pure protocol machines, plus the two machines against each other.
// (The server's side of the recordings replays through the real P2PServerSession:
// AnnexdKitTests/TranscriptReplayServerTests.)
//
//   ServerMachineModelTests      P2PServerMachine in memory: the store model of the client
//                                sessions, and reply checks the recordings imply.
//   TranscriptReplayClientTests  P2PClientMachine fed the recorded server bytes, doing what
//                                the recorded git-annex command did; what it sends must equal
//                                what the git-annex client sent.
//   TranscriptReplayPeerTests    P2PClientMachine against P2PServerMachine in memory.
//
// No sockets, no files: the machines' local work is done by the in-memory shells in
// Support/MemoryShells.swift (`ServerShell`, `ClientShell`, `MemoryStore`).

func compareWire(_ actual: [Wire], _ expected: [WireItem], _ label: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    if let m = wireMismatch(actual, expected, label) { Issue.record("\(m)", sourceLocation: sourceLocation) }
}

// MARK: - Server machine in memory

@Suite struct ServerMachineModelTests {
    /// The store model: replaying one pair's client sessions in recording order on ONE
    /// store, with the server-side additions record.sh makes between them, gives the
    /// content `RecordedSetup` says each session started with. (Checks the table against
    /// what the machine itself did with PUT and REMOVE.)
    @Test(arguments: ["10.20230126", "10.20261026",
                      "client-10.20230126+server-10.20261026", "client-10.20261026+server-10.20230126"])
    func storeTimeline(pair: String) throws {
        let store = MemoryStore(files: RecordedSetup.baseServerFiles)
        for session in RecordedSetup.clientSessionOrder {
            for f in RecordedSetup.addedOnServer(before: session) { store.objects[Content.key(f)] = Content.bytes(f) }
            let file = TranscriptFile(pair: pair, name: session)
            let expected = try #require(RecordedSetup.serverContent(atStartOf: file))
            #expect(Set(store.objects.keys) == Set(expected.map(Content.key)), "\(file): store at session start")
            #expect(store.objects.allSatisfy { Content.verify($0.key, $0.value) })
            let t = try file.load()
            let version = try #require(AnnexVersion(header: t.header("server")))
            let uuid = String(try #require(t.lines(.server).first).dropFirst(13))
            store.timestampAnswers = nil
            let shell = ServerShell(config: .init(serverUUID: uuid, maxVersion: version.maxProtocolVersion,
                                                  preauthenticated: true), store: store)
            shell.input.append(t.stream(.client))
            shell.inputEnded = true
            shell.start()
            shell.pump()
            #expect(shell.problems.isEmpty, "\(file): \(shell.problems)")
        }
    }

    /// Not in the recordings, but follows from them: after a GET, git-annex below protocol v2
    /// accepts only SUCCESS or FAILURE (anything else: `ERROR expected SUCCESS or FAILURE`, as
    /// recorded at v0/v1); the -PLUS forms only from v2 (the PLUS wording recorded at v4).
    @Test(arguments: ["SUCCESS-PLUS 22222222-2222-4222-8222-222222222222",
                      "FAILURE-PLUS 22222222-2222-4222-8222-222222222222"])
    func plusRepliesAfterGetNeedVersion2(reply: String) {
        for v in [1, 4] {
            let shell = ServerShell(config: .init(serverUUID: RecordedSetup.serverUUID, maxVersion: v,
                                                  preauthenticated: true), store: MemoryStore(files: ["small.txt"]))
            let key = Content.key("small.txt")
            shell.input.append(Array("VERSION \(v)\nGET 0 small.txt \(key)\n\(reply)\nCHECKPRESENT \(key)\n".utf8))
            shell.inputEnded = true
            shell.start()
            shell.pump()
            let afterData = Array(shell.output.drop { $0 != .line("VALID") }.dropFirst())
            #expect(afterData == (v >= 2 ? ["SUCCESS"] : ["ERROR expected SUCCESS or FAILURE", "SUCCESS"]),
                    "v\(v): \(reply)")
        }
    }
}

// MARK: - Client replay

@Suite struct TranscriptReplayClientTests {
    static let sessions = TranscriptFixtures.all.filter { !$0.isHandWritten }

    @Test(arguments: sessions)
    func replay(_ file: TranscriptFile) throws {
        let t = try file.load()
        let clientVersion = try #require(AnnexVersion(header: t.header("client")))
        let serverVersion = try #require(AnnexVersion(header: t.header("server")))
        let plan = try #require(RecordedSetup.clientPlan(file.name, client: clientVersion), "no plan for \(file)")

        let shell = ClientShell(maxVersion: clientVersion.maxProtocolVersion, objects: RecordedSetup.clientFilesToSend)
        if file.name == "get-resumed" {
            // The partial the interrupted get left: its size is the GET offset git-annex sent;
            // its bytes are what the interrupted session received (README: the first 65504 bytes
            // of that payload plus this session's payload hash to the key).
            guard case .get(_, let offset, _)? = plan.first?.request else { Issue.record("plan"); return }
            let interrupted = try TranscriptFile(pair: file.pair, name: "get-interrupted").load()
            var payload: [UInt8] = []
            for case .payload(.server, let b, _, _) in interrupted.events { payload = b; break }
            try #require(payload.count >= Int(offset))
            shell.partials[Content.key("medium.bin")] = Array(payload.prefix(Int(offset)))
        }
        // Only the server's records are input.
        shell.input.append(t.stream(.server))
        shell.inputEnded = true

        shell.start()
        shell.pump()
        let expectedVersion = min(clientVersion.maxProtocolVersion, serverVersion.maxProtocolVersion)
        #expect(shell.results == [.outcome(.connected(serverUUID: RecordedSetup.serverUUID, version: expectedVersion))],
                "\(file): connect")
        for step in plan {
            let before = shell.results.count
            shell.request(step.request)
            shell.pump()
            #expect(Array(shell.results.dropFirst(before)) == [step.expect], "\(file): \(step.request)")
        }
        for p in shell.problems { Issue.record("\(file): in-memory shell: \(p)") }
        #expect(shell.input.bufferedCount == 0, "\(file): \(shell.input.bufferedCount) server bytes left unread")

        // What the client sent; anything the machine emits after the shell saw the
        // connection die could not reach anyone and is not compared.
        let sent = shell.outputCountAtBreak.map { Array(shell.output.prefix($0)) } ?? shell.output
        compareWire(sent, WireItem.items(of: t, .client), "\(file) client output")

        // Content that arrived verified is what the server had.
        for step in plan {
            if case .get(let key, _, _) = step.request, step.expect == .outcome(.success(true)) {
                #expect(shell.objects[key] == Content.bytes(forKey: key), "\(file): content of \(key)")
            }
        }
        if file.name == "get-interrupted" {
            // The partial holds exactly what arrived before the stream died: a prefix of the content.
            let key = Content.key("medium.bin")
            let partial = try #require(shell.partials[key])
            #expect(partial.count > 0 && partial == Array(Content.bytes("medium.bin").prefix(partial.count)))
        }
    }
}


// MARK: - Peer against peer

@Suite struct TranscriptReplayPeerTests {
    static let uuid = RecordedSetup.serverUUID
    let small = Content.key("small.txt")
    let medium = Content.key("medium.bin")
    let new = Content.key("new.txt")
    let absent = Content.key("abc.txt")

    struct Versions: Sendable, CustomStringConvertible {
        let client: Int, server: Int, agreed: Int
        var description: String { "client \(client), server \(server) -> \(agreed)" }
    }

    @Test(arguments: [Versions(client: 4, server: 4, agreed: 4), Versions(client: 4, server: 1, agreed: 1),
                      Versions(client: 1, server: 4, agreed: 1), Versions(client: 0, server: 4, agreed: 0),
                      Versions(client: 4, server: 0, agreed: 0), Versions(client: 1, server: 1, agreed: 1),
                      Versions(client: 3, server: 4, agreed: 3)])
    func versionNegotiation(_ v: Versions) {
        let (client, server, agreed) = (v.client, v.server, v.agreed)
        let link = PeerLink(clientMax: client, serverMax: server, store: MemoryStore(files: []))
        #expect(link.connect() == .outcome(.connected(serverUUID: Self.uuid, version: agreed)))
        #expect(link.server.machine.version == agreed && link.client.machine.version == agreed)
    }

    @Test(arguments: [0, 1, 4])
    func requests(version v: Int) {
        let store = MemoryStore(files: ["small.txt", "medium.bin"])
        store.clock = 5000
        let link = PeerLink(clientMax: v, serverMax: v, store: store, clientFiles: ["new.txt"])
        #expect(link.connect() == .outcome(.connected(serverUUID: Self.uuid, version: v)))

        #expect(link.run(.checkPresent(small)) == .outcome(.success(true)))
        #expect(link.run(.checkPresent(absent)) == .outcome(.success(false)))

        #expect(link.run(.get(small, offset: 0, file: "small.txt")) == .outcome(.success(true)))
        #expect(link.client.objects[small] == Content.bytes("small.txt"))
        #expect(link.run(.get(medium, offset: 0, file: "medium.bin")) == .outcome(.success(true)))
        #expect(link.client.objects[medium] == Content.bytes("medium.bin"))
        // Absent content: DATA 0 (+ INVALID from v1); the client says FAILURE and the session goes on.
        #expect(link.run(.get(absent, offset: 0, file: "abc.txt")) == .outcome(.success(false)))
        #expect(link.client.objects[absent] == nil)

        #expect(link.run(.put(new, file: "new.txt")) == .outcome(.success(true)))
        #expect(store.objects[new] == Content.bytes("new.txt"))
        #expect(link.run(.put(new, file: "new.txt")) == .outcome(.alreadyHave))

        #expect(link.run(.lockContent(small)) == .outcome(.success(true)))
        #expect(store.locks == [small])
        #expect(link.run(.unlockContent) == .outcome(.unlocked))
        #expect(store.locks.isEmpty)
        #expect(link.run(.lockContent(absent)) == .outcome(.success(false)))
        #expect(store.locks.isEmpty)

        #expect(link.run(.remove(new)) == .outcome(.success(true)))
        #expect(store.objects[new] == nil)
        #expect(link.run(.checkPresent(new)) == .outcome(.success(false)))
        #expect(link.run(.remove(new)) == .outcome(.success(true)), "removing absent content succeeds, as in git-annex")

        if v >= 3 {
            #expect(link.run(.getTimestamp) == .outcome(.timestamp(5000)))
            // Deadline not after the server's clock: refused, content kept.
            #expect(link.run(.removeBefore(timestamp: 5000, key: medium)) == .outcome(.success(false)))
            #expect(store.objects[medium] != nil)
            #expect(link.run(.removeBefore(timestamp: 5060, key: medium)) == .outcome(.success(true)))
            #expect(store.objects[medium] == nil)
        } else {
            // Below v3 annexd does not serve them (git-annex 10.20261026 would; see deviations (iv)).
            #expect(link.run(.getTimestamp) == .failed(.remoteError("unexpected command")))
            #expect(link.run(.removeBefore(timestamp: 5060, key: medium)) == .failed(.remoteError("unexpected command")))
            #expect(store.objects[medium] != nil)
        }
        // Still in step after the refusals.
        #expect(link.run(.checkPresent(small)) == .outcome(.success(true)))

        link.hangUp()
        #expect(link.server.ended && !link.server.closed)
        #expect(link.client.problems.isEmpty && link.server.problems.isEmpty)
        #expect(link.client.output.contains(.line("VERSION \(v)")))
        #expect(link.server.output.contains(.line("VALID")) == (v >= 1))
    }

    /// A PUT whose DATA is cut short keeps the partial; the next session resumes with PUT-FROM.
    @Test(arguments: [0, 1, 4])
    func putResumesAfterShortData(version v: Int) {
        let store = MemoryStore(files: [])
        let content = Content.bytes("new-medium.bin")
        let key = Content.key("new-medium.bin")
        let first = PeerLink(clientMax: v, serverMax: v, store: store, clientFiles: ["new-medium.bin"])
        _ = first.connect()
        first.client.shortSend = 40000
        #expect(first.run(.put(key, file: "new-medium.bin")) == .connectionClosed)
        #expect(first.server.closed, "the server ends a session whose DATA ended early")
        #expect(store.partials[key] == Array(content.prefix(40000)))
        #expect(store.objects[key] == nil)

        let second = PeerLink(clientMax: v, serverMax: v, store: store, clientFiles: ["new-medium.bin"])
        _ = second.connect()
        #expect(second.run(.put(key, file: "new-medium.bin")) == .outcome(.success(true)))
        #expect(second.server.output.contains(.line("PUT-FROM 40000")))
        #expect(second.client.output.contains(.line("DATA \(content.count - 40000)")))
        #expect(store.objects[key] == content)
        #expect(store.partials[key] == nil)
    }

    /// A GET whose DATA is cut short leaves the client a partial; it resumes with GET <offset>.
    @Test(arguments: [0, 1, 4])
    func getResumesAfterShortData(version v: Int) {
        let store = MemoryStore(files: ["medium.bin"])
        let first = PeerLink(clientMax: v, serverMax: v, store: store)
        _ = first.connect()
        first.server.shortSend = 65504
        #expect(first.run(.get(medium, offset: 0, file: "medium.bin")) == .failed(.closed))
        #expect(first.server.closed)
        let partial = first.client.partials[medium] ?? []
        #expect(partial == Array(Content.bytes("medium.bin").prefix(65504)))

        let second = PeerLink(clientMax: v, serverMax: v, store: store)
        second.client.partials[medium] = partial
        _ = second.connect()
        #expect(second.run(.get(medium, offset: Int64(partial.count), file: "medium.bin")) == .outcome(.success(true)))
        #expect(second.server.output.contains(.line("DATA \(102400 - 65504)")))
        #expect(second.client.objects[medium] == Content.bytes("medium.bin"))
    }

    /// Content that does not match its key is refused by the receiving server.
    @Test(arguments: [0, 1, 4])
    func putOfWrongContentFails(version v: Int) {
        let store = MemoryStore(files: [])
        let link = PeerLink(clientMax: v, serverMax: v, store: store)
        link.client.objects[new] = Array("bad\n".utf8)
        _ = link.connect()
        #expect(link.run(.put(new, file: "new.txt")) == .outcome(.success(false)))
        #expect(store.objects[new] == nil && store.partials[new] == nil)
        #expect(link.run(.checkPresent(new)) == .outcome(.success(false)))
    }

    /// Deviation (ii) between annexd peers: INVALID after DATA discards what arrived.
    @Test(arguments: [1, 4])
    func invalidAfterDataIsDiscarded(version v: Int) {
        let store = MemoryStore(files: [])
        let link = PeerLink(clientMax: v, serverMax: v, store: store, clientFiles: ["new.txt"])
        link.client.sendInvalid = true
        _ = link.connect()
        #expect(link.run(.put(new, file: "new.txt")) == .outcome(.success(false)))
        #expect(link.client.output.contains(.line("INVALID")))
        #expect(store.objects[new] == nil && store.partials[new] == nil)
    }

    /// The client refuses a second request while one is in progress or a lock is held.
    @Test func oneRequestAtATime() {
        let link = PeerLink(clientMax: 4, serverMax: 4, store: MemoryStore(files: ["small.txt"]))
        _ = link.connect()
        #expect(link.run(.lockContent(small)) == .outcome(.success(true)))
        #expect(link.run(.checkPresent(small)) == .failed(.busy))
        #expect(link.run(.unlockContent) == .outcome(.unlocked))
        #expect(link.run(.checkPresent(small)) == .outcome(.success(true)))
    }
}

