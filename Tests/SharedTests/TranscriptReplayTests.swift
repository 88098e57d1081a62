import Foundation
import Testing
@testable import Shared

// Replays of real git-annex P2P sessions (Fixtures/transcripts, see its README.md)
// against annexd's pure protocol machines, plus the two machines against each other.
//
//   TranscriptReplayServerTests  P2PServerMachine fed the recorded client bytes; what it
//                                sends must equal what git-annex-shell sent, except for the
//                                deliberate deviations in `ServerDeviations.table`.
//   TranscriptReplayClientTests  P2PClientMachine fed the recorded server bytes, doing what
//                                the recorded git-annex command did; what it sends must equal
//                                what the git-annex client sent.
//   TranscriptReplayPeerTests    P2PClientMachine against P2PServerMachine in memory.
//
// No sockets, no files: the machines' local work is done by the in-memory shells at the end
// of this file (`ServerShell`, `ClientShell`, `MemoryStore`).

// MARK: - Server replay

@Suite struct TranscriptReplayServerTests {
    static let transcripts = TranscriptFixtures.all

    @Test func fixturesArePresent() throws {
        // 4 pair directories; 14 client sessions in each, 51 hand-written ones in the two same-version ones.
        let pairs = Set(Self.transcripts.map(\.pair))
        #expect(pairs == ["10.20230126", "10.20261026",
                          "client-10.20230126+server-10.20261026", "client-10.20261026+server-10.20230126"])
        #expect(Self.transcripts.filter { !$0.isHandWritten }.count == 4 * 14)
        #expect(Self.transcripts.filter(\.isHandWritten).count == 2 * 51)
    }

    @Test(arguments: transcripts)
    func replay(_ file: TranscriptFile) throws {
        let t = try file.load()
        let serverVersion = try #require(AnnexVersion(header: t.header("server")), "unknown server version")
        let deviations = ServerDeviations.table.filter { $0.applies(to: file.name, server: serverVersion) }

        // The server's config, from the recording: its UUID from the greeting, the protocol
        // maximum of the git-annex version that served the session.
        let greeting = try #require(t.lines(.server).first)
        let uuid = try #require(greeting.hasPrefix("AUTH-SUCCESS ") ? String(greeting.dropFirst(13)) : nil)
        let config = P2PServerMachine.Config(serverUUID: uuid, maxVersion: serverVersion.maxProtocolVersion,
                                             preauthenticated: true)

        let initial = try #require(RecordedSetup.serverContent(atStartOf: file), "no store model for \(file)")
        let store = MemoryStore(files: initial)
        // GETTIMESTAMP is answered with what git-annex answered; the server's clock for
        // REMOVE-BEFORE is that value (git-annex's clock is the host's uptime, ~1300 s here).
        let timestamps = t.lines(.server).compactMap { $0.hasPrefix("TIMESTAMP ") ? Int64($0.dropFirst(10)) : nil }
        store.timestampAnswers = timestamps
        store.clock = timestamps.first ?? 1000

        let shell = ServerShell(config: config, store: store)
        // Only the client's records are input: its byte stream, split into lines by
        // LineBuffer as annexd's FDConnection does, DATA payloads taken when the machine asks.
        shell.input.append(t.stream(.client))
        shell.inputEnded = true
        shell.start()
        shell.pump()
        for p in shell.problems { Issue.record("\(file): in-memory shell: \(p)") }

        // Expected: what git-annex sent, with annexd's deliberate deviations applied.
        var expected = WireItem.items(of: t, .server)
        var stopAt: (request: P2PServerMachine.LocalRequest, trigger: String)?
        var cursor = 0
        for d in deviations {
            switch d.change {
            case .replace(let recorded, let annexd):
                guard let at = WireItem.find(recorded, in: expected, from: cursor) else {
                    Issue.record("\(file): deviation not found in the recording (stale table entry?): \(recorded) — \(d.why)")
                    continue
                }
                expected.replaceSubrange(at..<at + recorded.count, with: annexd.map { WireItem(wire: $0, event: expected[at].event) })
                cursor = at + annexd.count
            case .stopsAt(let request, let trigger):
                stopAt = (request, trigger)
            }
        }

        if let stopAt {
            // (v) annexd serves this; git-annex-shell failed. The replay ends at the request.
            #expect(shell.stoppedAt == stopAt.request, "\(file): expected the machine to ask for \(stopAt.request)")
            let trigger = try #require(t.events.firstIndex(of: .line(.client, Array(stopAt.trigger.utf8))))
            expected = expected.filter { $0.event < trigger }
            compareWire(shell.output, expected, "\(file) server output")
            return
        }
        #expect(shell.stoppedAt == nil, "\(file): machine asked for \(String(describing: shell.stoppedAt)), not in the table")
        compareWire(shell.output, expected, "\(file) server output")

        // Who ended the session must match: if git-annex-shell hung up before the client,
        // annexd's machine (or, for an over-long line, its shell) must close too; otherwise
        // the whole client stream must have been consumed without the machine closing.
        let recordedServerClosed = t.closedFirst(.server)
        #expect(shell.closed == recordedServerClosed,
                "\(file): session closed by server: annexd \(shell.closed) (\(shell.closeReason ?? "-")), git-annex \(recordedServerClosed)")
        if !shell.closed {
            #expect(shell.input.bufferedCount == 0, "\(file): \(shell.input.bufferedCount) client bytes left unread")
        }
    }

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

    /// Every entry of the deviation table is used by at least one transcript.
    @Test func deviationTableEntriesNameRealTranscripts() {
        for d in ServerDeviations.table {
            let used = Self.transcripts.contains { f in
                guard f.isHandWritten, let t = try? f.load(), let v = AnnexVersion(header: t.header("server")) else { return false }
                return d.applies(to: f.name, server: v)
            }
            #expect(used, "deviation for \(d.transcript) matches no transcript")
        }
    }
}

/// The git-annex builds the transcripts were recorded with.
enum AnnexVersion: String, Sendable {
    /// Debian's git-annex: speaks P2P protocol up to version 1.
    case debian = "10.20230126"
    /// PyPI's git-annex: up to version 4.
    case pypi = "10.20261026"

    /// From a `# server:` / `# client:` header, e.g. `git-annex 10.20261026-g351f69fa…`.
    init?(header: String?) {
        guard let h = header, h.hasPrefix("git-annex ") else { return nil }
        let v = h.dropFirst("git-annex ".count).prefix { $0 != "-" }
        self.init(rawValue: String(v))
    }

    var maxProtocolVersion: Int {
        switch self {
        case .debian: return 1
        case .pypi: return 4
        }
    }
}

// MARK: - Deliberate deviations of annexd's server from git-annex-shell

/// Where annexd's P2PServerMachine deliberately answers differently from the recorded
/// git-annex-shell. Each entry replaces a contiguous run of recorded server output
/// (in order: each entry is searched after the previous one of the same transcript);
/// a recorded line ending in `*` matches by prefix (TIMESTAMP values vary between recordings).
struct ServerDeviation: Sendable {
    enum Change: Sendable {
        case replace([Wire], with: [Wire])
        /// annexd serves a request git-annex-shell refused by exiting: the replay checks that
        /// the machine asks the shell for this local request after the client line `trigger`,
        /// and ends there.
        case stopsAt(P2PServerMachine.LocalRequest, trigger: String)
    }

    let transcript: String
    /// Server versions the entry is for (empty: both).
    let servers: Set<AnnexVersion>
    let change: Change
    let why: String

    func applies(to name: String, server: AnnexVersion) -> Bool {
        name == transcript && (servers.isEmpty || servers.contains(server))
    }
}

enum ServerDeviations {
    private static func on(_ transcript: String, _ servers: Set<AnnexVersion>, _ change: ServerDeviation.Change,
                           _ why: String) -> ServerDeviation {
        ServerDeviation(transcript: transcript, servers: servers, change: change, why: why)
    }

    private static func on(_ transcript: String, _ change: ServerDeviation.Change, _ why: String) -> ServerDeviation {
        ServerDeviation(transcript: transcript, servers: [], change: change, why: why)
    }

    static let tooLong = "ERROR protocol line longer than \(LineBuffer.maxLineLength) bytes"

    static let table: [ServerDeviation] = [
        // (i) Keys git-annex parses but annexd refuses. annexd's AnnexKey refuses any key that
        // could not be an object file name ('/', '..', NUL, whitespace, > 255 bytes); the
        // KeyError text says why, where git-annex treats the key as absent content.
        on("server-key-with-slash", .replace(["FAILURE"],
            with: [#"ERROR invalid key "SHA256E-s6--ab/cd.txt": contains '/'"#]),
           "(i) CHECKPRESENT of a key with '/': git-annex says FAILURE"),
        on("server-key-with-slash", .replace(["DATA 0", .payload(announced: 0, []), "INVALID",
                                              "ERROR expected SUCCESS or FAILURE"],
            with: [#"ERROR invalid key "SHA256E-s6--ab/cd.txt": contains '/'"#, "SUCCESS"]),
           "(i) GET of that key: git-annex sends absent content (DATA 0, INVALID) and then waits for "
           + "SUCCESS/FAILURE, refusing the next CHECKPRESENT; annexd refuses the GET and stays ready, "
           + "so the CHECKPRESENT is answered"),
        on("server-key-with-dotdot", .replace(["ERROR unknown command"],
            with: [#"ERROR invalid key "..": contains '..'"#]),
           "`CHECKPRESENT ..`: neither parses it; annexd's error says why (KeyError text), git-annex's is generic"),
        on("server-key-with-dotdot", .replace(["FAILURE"],
            with: [#"ERROR invalid key "SHA256E-s6--..%2F..%2Fetc": contains '..'"#]),
           "(i) a key with '..': git-annex says FAILURE (absent)"),
        on("server-key-with-dotdot", .replace(["ERROR unknown command"],
            with: [#"ERROR invalid key "../../../etc/passwd": contains '/'"#]),
           "`GET 0 x ../../../etc/passwd`: neither parses it; KeyError text instead of `unknown command`"),
        on("server-put-key-with-slash", .replace(["PUT-FROM 0", "FAILURE"],
            with: [#"ERROR invalid key "SHA256E-s4--../../evil": contains '/'"#,
                   "ERROR unexpected command", "ERROR unknown command", "ERROR unexpected command"]),
           "(i) PUT of a key with '/': git-annex takes the data and fails verification; annexd refuses the "
           + "PUT. The hand-written client goes on blindly: its `DATA 4` is then out of place (unexpected "
           + "command), the 4 payload bytes `new\\n` are read as the line `new` (unknown command), and VALID "
           + "is out of place"),
        on("server-line-32767", .replace(["ERROR unknown command"],
            with: [.line("ERROR invalid key \"" + String(repeating: "X", count: 80) + "…\": longer than 255 bytes")]),
           "a 32767-byte line is read by both; its 'key' does not parse: KeyError text (shown truncated) "
           + "instead of `unknown command`"),

        // (ii) INVALID after the DATA of a PUT: the sender says the content changed while it was
        // sent. annexd believes it and discards what arrived; git-annex re-verified the bytes
        // itself and stored them (SUCCESS, and CHECKPRESENT then says SUCCESS).
        on("server-put-invalid-v1", .replace(["PUT-FROM 0", "SUCCESS", "SUCCESS"],
                                             with: ["PUT-FROM 0", "FAILURE", "FAILURE"]),
           "(ii) INVALID after DATA: annexd discards (FAILURE), so the key stays absent (FAILURE)"),

        // (iii) A line of 32768 bytes or more: git-annex-shell exits without a word on the
        // protocol stream; annexd's FDConnection tells the client why before closing.
        // (Mimicked here: LineBuffer throws .tooLong and the test shell sends what FDConnection sends.)
        on("server-line-32768", .replace(["VERSION 1"], with: ["VERSION 1", .line(tooLong)]), "(iii)"),
        on("server-line-32769", .replace(["VERSION 1"], with: ["VERSION 1", .line(tooLong)]), "(iii)"),
        on("server-long-line", .replace(["VERSION 1"], with: ["VERSION 1", .line(tooLong)]), "(iii) 40013 bytes"),

        // Malformed numbers: P2PParseError.malformed names the field; git-annex says `unknown command`.
        on("server-malformed-get-offset", .replace(["ERROR unknown command"],
            with: [#"ERROR GET: "x" is not a number"#]),
           "malformed number: P2PParseError.malformed text instead of `unknown command`"),
        // CONNECT to a service that is not a git service: git-annex cannot parse the message
        // (`unknown command`); annexd parses CONNECT with any service name and refuses it by name,
        // which tells the user what was refused. Judged deliberately better, not a bug: any ERROR
        // makes a git-annex client give up the same way.
        on("server-connect-bogus-service", .replace(["ERROR unknown command"],
            with: ["ERROR unsupported service git-frobnicate"]),
           "CONNECT of an unknown service: refused by name"),

        // (iv) Version gating: GETTIMESTAMP and REMOVE-BEFORE came with protocol v3, BYPASS with v2.
        // annexd answers them below that version with `unexpected command`. 10.20230126 (max v1)
        // did not know them at all (`unknown command`); 10.20261026 accepted them at any version.
        on("server-gettimestamp-v1", [.debian], .replace(["ERROR unknown command"], with: ["ERROR unexpected command"]), "(iv)"),
        on("server-gettimestamp-v4", [.debian], .replace(["ERROR unknown command"], with: ["ERROR unexpected command"]),
           "(iv) VERSION 4 was answered VERSION 1"),
        on("server-gettimestamp-v4", [.debian], .replace(["ERROR unknown command"], with: ["ERROR unexpected command"]),
           "(iv) the second GETTIMESTAMP"),
        on("server-remove-before-v1", [.debian], .replace(["ERROR unknown command"], with: ["ERROR unexpected command"]), "(iv)"),
        on("server-remove-before-past-v4", [.debian], .replace(["ERROR unknown command"], with: ["ERROR unexpected command"]),
           "(iv) VERSION 4 was answered VERSION 1"),
        on("server-remove-before-absent-v4", [.debian], .replace(["ERROR unknown command"], with: ["ERROR unexpected command"]),
           "(iv) GETTIMESTAMP at v1"),
        on("server-remove-before-absent-v4", [.debian], .replace(["ERROR unknown command"], with: ["ERROR unexpected command"]),
           "(iv) REMOVE-BEFORE at v1"),
        on("server-bypass-v1", [.debian], .replace(["ERROR unknown command"], with: ["ERROR unexpected command"]), "(iv)"),
        on("server-bypass-v4", [.debian], .replace(["ERROR unknown command"], with: ["ERROR unexpected command"]),
           "(iv) VERSION 4 was answered VERSION 1"),
        on("server-gettimestamp-v1", [.pypi], .replace(["TIMESTAMP *"], with: ["ERROR unexpected command"]),
           "(iv) 10.20261026 answers GETTIMESTAMP at v1"),
        on("server-remove-before-v1", [.pypi], .replace(["SUCCESS"], with: ["ERROR unexpected command"]),
           "(iv) 10.20261026 serves REMOVE-BEFORE at v1"),
        on("server-bypass-v1", [.pypi], .replace(["VERSION 1", "SUCCESS"],
                                                  with: ["VERSION 1", "ERROR unexpected command", "SUCCESS"]),
           "(iv) 10.20261026 accepts BYPASS silently at v1"),

        // (v) NOTIFYCHANGE and CONNECT over p2pstdio: git-annex-shell fails (exit 1, nothing on the
        // protocol stream); annexd supports both.
        on("server-notifychange-v1", .stopsAt(.waitForChange, trigger: "NOTIFYCHANGE"), "(v)"),
        on("server-connect-upload-pack", .stopsAt(.connect(service: "git-upload-pack"), trigger: "CONNECT git-upload-pack"),
           "(v) 10.20230126 relayed git-upload-pack, 10.20261026 refused it"),
    ]
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

// MARK: - The recording setup (record.sh / recorder.py), as data

enum RecordedSetup {
    static let serverUUID = "11111111-1111-4111-8111-111111111111"

    /// make_server: small.txt and medium.bin. Every hand-written session ran against a fresh
    /// copy of this repo.
    static let baseServerFiles = ["small.txt", "medium.bin"]

    /// record_client runs these in this order against one server repo.
    static let clientSessionOrder = [
        "get-small", "get-medium", "copy-to-small", "copy-to-medium", "drop-from-small", "drop-local-small",
        "fsck-from-small", "fsck-from-fast-small", "fsck-from-missing", "copy-to-present", "copy-to-already-have",
        "sync-content", "get-interrupted", "get-resumed",
    ]

    /// Content record.sh adds to the server repo directly (not over P2P) before a session.
    static func addedOnServer(before session: String) -> [String] {
        switch session {
        case "copy-to-present": return ["same1.txt", "same2.txt"]
        case "sync-content": return ["server-new.txt"]
        default: return []
        }
    }

    /// What the server repo held when a session started.
    static func serverContent(atStartOf file: TranscriptFile) -> [String]? {
        if file.isHandWritten { return baseServerFiles }
        let base = baseServerFiles
        switch file.name {
        case "get-small", "get-medium", "copy-to-small": return base
        case "copy-to-medium": return base + ["new-small.txt"]
        case "drop-from-small": return base + ["new-small.txt", "new-medium.bin"]
        // drop --from removed new-small.txt
        case "drop-local-small", "fsck-from-small", "fsck-from-fast-small", "fsck-from-missing":
            return base + ["new-medium.bin"]
        case "copy-to-present", "copy-to-already-have":
            return base + ["new-medium.bin", "same1.txt", "same2.txt"]
        case "sync-content":
            return base + ["new-medium.bin", "same1.txt", "same2.txt", "server-new.txt"]
        // sync --content sent client-new.txt and new-small.txt
        case "get-interrupted", "get-resumed":
            return base + ["new-medium.bin", "same1.txt", "same2.txt", "server-new.txt", "client-new.txt", "new-small.txt"]
        default: return nil
        }
    }

    /// Content the client repo has to send.
    static let clientFilesToSend = ["new-small.txt", "new-medium.bin", "same1.txt", "same2.txt", "client-new.txt"]

    struct Step {
        let request: P2PClientMachine.Request
        let expect: ClientResult
    }

    /// What each recorded git-annex command asked of the remote, and the result it got.
    static func clientPlan(_ session: String, client: AnnexVersion) -> [Step]? {
        func k(_ f: String) -> AnnexKey { Content.key(f) }
        let ok = ClientResult.outcome(.success(true)), no = ClientResult.outcome(.success(false))
        switch session {
        case "get-small": return [Step(request: .get(k("small.txt"), offset: 0, file: "small.txt"), expect: ok)]
        case "get-medium": return [Step(request: .get(k("medium.bin"), offset: 0, file: "medium.bin"), expect: ok)]
        case "copy-to-small", "copy-to-medium":
            // copy --to asks first, then PUTs.
            let f = session == "copy-to-small" ? "new-small.txt" : "new-medium.bin"
            return [Step(request: .checkPresent(k(f)), expect: no), Step(request: .put(k(f), file: f), expect: ok)]
        case "drop-from-small": return [Step(request: .remove(k("new-small.txt")), expect: ok)]
        case "drop-local-small":
            // numcopies proof: lock the remote copy, drop locally, unlock.
            return [Step(request: .lockContent(k("small.txt")), expect: ok),
                    Step(request: .unlockContent, expect: .outcome(.unlocked))]
        case "fsck-from-small":
            // fsck --from downloads with an empty associated file (`GET 0  KEY`).
            return [Step(request: .checkPresent(k("small.txt")), expect: ok),
                    Step(request: .get(k("small.txt"), offset: 0, file: ""), expect: ok)]
        case "fsck-from-fast-small": return [Step(request: .checkPresent(k("small.txt")), expect: ok)]
        case "fsck-from-missing": return [Step(request: .checkPresent(k("new-small.txt")), expect: no)]
        case "copy-to-present": return [Step(request: .checkPresent(k("same1.txt")), expect: ok)]
        case "copy-to-already-have":
            return [Step(request: .put(k("same2.txt"), file: "same2.txt"), expect: .outcome(.alreadyHave))]
        case "sync-content":
            // 10.20230126 asks CHECKPRESENT before each PUT, 10.20261026 PUTs directly.
            func send(_ f: String) -> [Step] {
                (client == .debian ? [Step(request: .checkPresent(k(f)), expect: no)] : [])
                    + [Step(request: .put(k(f), file: f), expect: ok)]
            }
            return send("client-new.txt") + send("new-small.txt")
                + [Step(request: .get(k("server-new.txt"), offset: 0, file: "server-new.txt"), expect: ok),
                   Step(request: .get(k("small.txt"), offset: 0, file: "small.txt"), expect: ok)]
        case "get-interrupted":
            // The client was killed mid-transfer: the stream ends inside the payload.
            return [Step(request: .get(k("medium.bin"), offset: 0, file: "medium.bin"), expect: .failed(.closed))]
        case "get-resumed":
            // Resumes from the partial the interrupted get left (its size, 65504 in every recording so
            // far, depends on timing; it is the offset the recorded client asked for).
            return [Step(request: .get(k("medium.bin"), offset: 65504, file: "medium.bin"), expect: ok)]
        default: return nil
        }
    }
}

/// Every file content in the recordings.
enum Content {
    static let files: [String: [UInt8]] = [
        "small.txt": Array("hello\n".utf8),
        "medium.bin": stream(seed: "medium", count: 102400),
        "new-small.txt": Array("world\n".utf8),
        "new-medium.bin": stream(seed: "newmedium", count: 102400),
        "same1.txt": Array("shared one\n".utf8),
        "same2.txt": Array("shared two\n".utf8),
        "server-new.txt": Array("from server\n".utf8),
        "client-new.txt": Array("from client\n".utf8),
        "new.txt": Array("new\n".utf8),   // {NEWKEY} of the hand-written sessions
        "abc.txt": Array("abc".utf8),     // {ABSENTKEY}: never stored anywhere
    ]

    static func bytes(_ file: String) -> [UInt8] { files[file]! }

    static func bytes(forKey key: AnnexKey) -> [UInt8]? {
        files.first { Content.key($0.key) == key }?.value
    }

    /// record.sh's `gen SEED N`: SHA-256(seed ‖ i as 8 bytes big-endian) for i = 0, 1, …, cut to N bytes.
    static func stream(seed: String, count: Int) -> [UInt8] {
        var out: [UInt8] = []
        var i: UInt64 = 0
        while out.count < count {
            let h = HashAlgorithm.sha256.makeHasher()
            h.update(Array(seed.utf8) + withUnsafeBytes(of: i.bigEndian, Array.init))
            out += fromHex(h.finalizeHex())
            i += 1
        }
        return Array(out.prefix(count))
    }

    /// The SHA256E key git-annex gives the file (extension kept).
    static func key(_ file: String) -> AnnexKey {
        let b = bytes(file)
        let h = HashAlgorithm.sha256.makeHasher()
        h.update(b)
        let ext = file.firstIndex(of: ".").map { String(file[$0...]) } ?? ""
        return AnnexKey(backendName: "SHA256E", size: Int64(b.count), name: h.finalizeHex() + ext)
    }

    /// Does the content match the key (size and, for hash backends, checksum)?
    static func verify(_ key: AnnexKey, _ bytes: [UInt8]) -> Bool {
        if let size = key.size, size != Int64(bytes.count) { return false }
        switch key.backend.verification {
        case .hash(let alg):
            let h = alg.makeHasher()
            h.update(bytes)
            return h.finalizeHex() == key.backend.expectedDigest(of: key)
        case .sizeOnly: return true
        case .unsupported: return false
        }
    }

    private static func fromHex(_ s: String) -> [UInt8] {
        let u = Array(s.utf8)
        func v(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : c - 87 }
        return stride(from: 0, to: u.count, by: 2).map { v(u[$0]) << 4 | v(u[$0 + 1]) }
    }
}

// MARK: - Wire items and their comparison

/// One item of a byte stream: a protocol line or a DATA payload.
enum Wire: Equatable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    case line(String)
    case payload(announced: Int64, [UInt8])

    init(stringLiteral s: String) { self = .line(s) }

    var description: String {
        switch self {
        case .line(let s): return "\"" + KeyError.printable(s) + "\"" + (s.unicodeScalars.count > 80 ? " (\(s.utf8.count) bytes)" : "")
        case .payload(let n, let b):
            let h = HashAlgorithm.sha256.makeHasher()
            h.update(b)
            return "<payload \(b.count)/\(n) bytes sha256 \(h.finalizeHex().prefix(16))>"
        }
    }

    /// `self` as a pattern from the deviation table: a line ending in `*` matches by prefix.
    func matches(_ actual: Wire) -> Bool {
        if case .line(let p) = self, p.hasSuffix("*"), case .line(let a) = actual { return a.hasPrefix(p.dropLast()) }
        return self == actual
    }
}

/// A recorded item and the index of its event in the transcript.
struct WireItem {
    let wire: Wire
    let event: Int

    static func items(of t: Transcript, _ d: Transcript.Direction) -> [WireItem] {
        t.events.enumerated().compactMap { i, e in
            switch e {
            case .line(d, let b): return WireItem(wire: .line(String(decoding: b, as: UTF8.self)), event: i)
            case .payload(d, let b, let n, _): return WireItem(wire: .payload(announced: n, b), event: i)
            default: return nil
            }
        }
    }

    static func find(_ pattern: [Wire], in items: [WireItem], from start: Int) -> Int? {
        guard !pattern.isEmpty, items.count >= pattern.count, start <= items.count - pattern.count else { return nil }
        return (start...(items.count - pattern.count)).first { at in
            pattern.indices.allSatisfy { pattern[$0].matches(items[at + $0].wire) }
        }
    }
}

/// Compares what a machine sent with what was recorded, item by item. A recorded payload
/// shorter than announced is where the recording ends (the peer was gone): the machine's
/// payload must have the same announced length and start with the recorded bytes, and what
/// it sent afterwards cannot be compared.
func compareWire(_ actual: [Wire], _ expected: [WireItem], _ label: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    func context() -> String {
        "\n  expected: " + expected.map(\.wire.description).joined(separator: ", ")
            + "\n  actual:   " + actual.map(\.description).joined(separator: ", ")
    }
    for (i, e) in expected.enumerated() {
        guard i < actual.count else {
            Issue.record("\(label): ends after \(i) items, expected \(e.wire)\(context())", sourceLocation: sourceLocation)
            return
        }
        if case .payload(let n, let recorded) = e.wire, recorded.count < n {
            guard case .payload(let m, let sent) = actual[i], m == n, sent.starts(with: recorded) else {
                Issue.record("\(label) item \(i): \(actual[i]) does not start with the truncated recorded \(e.wire)\(context())",
                             sourceLocation: sourceLocation)
                return
            }
            return
        }
        if actual[i] != e.wire {
            Issue.record("\(label) item \(i): got \(actual[i]), expected \(e.wire)\(context())", sourceLocation: sourceLocation)
            return
        }
    }
    if actual.count > expected.count {
        Issue.record("\(label): \(actual.count - expected.count) extra items from \(actual[expected.count])\(context())",
                     sourceLocation: sourceLocation)
    }
}

// MARK: - In-memory shells

/// A repository's annex objects in memory.
final class MemoryStore {
    var objects: [AnnexKey: [UInt8]] = [:]
    /// Partial uploads kept for resume (the server's `.git/annex/tmp`).
    var partials: [AnnexKey: [UInt8]] = [:]
    var locks: Set<AnnexKey> = []
    /// The server's clock (seconds) for REMOVE-BEFORE, and GETTIMESTAMP's answer when
    /// `timestampAnswers` is nil.
    var clock: Int64 = 1000
    /// Recorded answers to GETTIMESTAMP, used in order.
    var timestampAnswers: [Int64]?

    init(files: [String]) {
        for f in files { objects[Content.key(f)] = Content.bytes(f) }
    }
}

/// Does for P2PServerMachine what annexd's P2PServerSession does with a connection and an
/// ObjectStore, in memory: lines from a LineBuffer, DATA taken from it when asked, replies
/// collected as `output` (and as bytes in `outbox` for a peer).
final class ServerShell {
    var machine: P2PServerMachine
    let store: MemoryStore
    var input = LineBuffer()
    /// The client closed its side: no more bytes after what is buffered.
    var inputEnded = false
    var output: [Wire] = []
    var outbox: [UInt8] = []
    var closeReason: String?
    /// The shell ended the session itself (line too long).
    var closedByShell = false
    /// The client's stream ended and the session ended with it.
    var ended = false
    /// A local request this shell does not implement (NOTIFYCHANGE, CONNECT): the replay stops.
    var stoppedAt: P2PServerMachine.LocalRequest?
    var problems: [String] = []
    /// Send only this many bytes of the next DATA payload (content shrank / connection broke).
    var shortSend: Int?
    private var heldLocks: Set<AnnexKey> = []

    var closed: Bool { machine.isClosed || closedByShell }
    var isDone: Bool { closed || ended || stoppedAt != nil }

    init(config: P2PServerMachine.Config, store: MemoryStore) {
        machine = P2PServerMachine(config: config)
        self.store = store
    }

    func start() { perform(machine.start()) }

    /// Handles every complete line buffered (and the DATA they announce).
    func pump() {
        while !isDone {
            let line: String?
            do {
                line = try input.nextLine()
            } catch {
                // FDConnection.ReadError: sent as ERROR, then the session ends.
                switch error {
                case .tooLong: send(.error("protocol line longer than \(LineBuffer.maxLineLength) bytes"))
                case .notUTF8: send(.error("protocol line is not UTF-8"))
                }
                closeReason = "\(error)"
                closedByShell = true
                finish()
                return
            }
            guard let line else {
                if inputEnded { ended = true; finish() }
                return
            }
            let actions: [P2PServerMachine.Action]
            do {
                actions = machine.receive(try P2PMessage.parse(line))
            } catch {
                actions = machine.receiveUnparseable(error)
            }
            perform(actions)
        }
    }

    private func send(_ m: P2PMessage) {
        output.append(.line(m.wireLine))
        outbox += Array(m.wireLine.utf8) + [10]
    }

    private func sendPayload(announced: Int, _ bytes: ArraySlice<UInt8>) {
        output.append(.payload(announced: Int64(announced), Array(bytes)))
        outbox += bytes
    }

    private func perform(_ actions: [P2PServerMachine.Action]) {
        var queue = actions[...]
        while let action = queue.popFirst() {
            switch action {
            case .send(let m): send(m)
            case .close(let reason): closeReason = reason; finish()
            case .effect(.unlockContent(let key)): unlock(key)
            case .effect(.discardReceived(let key)): store.partials[key] = nil
            case .local(let request):
                switch request {
                case .waitForChange, .connect:
                    stoppedAt = request
                    return
                default:
                    queue.append(contentsOf: machine.complete(handle(request)))
                }
            }
        }
    }

    private func handle(_ request: P2PServerMachine.LocalRequest) -> P2PServerMachine.LocalResult {
        switch request {
        case .checkAuth:
            problems.append("AUTH on a preauthenticated session")
            return .authenticated(false)
        case .checkPresent(let key):
            return .present(store.objects[key] != nil)
        case .lockContent(let key):
            guard store.objects[key] != nil else { return .locked(false) }
            store.locks.insert(key)
            heldLocks.insert(key)
            return .locked(true)
        case .remove(let key, let before):
            // Absent content counts as removed, as in git-annex.
            guard store.objects[key] != nil else { return .done(true) }
            if let before, !(store.clock < before) { return .done(false) }
            if store.locks.contains(key) { return .done(false) }
            store.objects[key] = nil
            return .done(true)
        case .getTimestamp:
            guard var answers = store.timestampAnswers else { return .timestamp(store.clock) }
            guard !answers.isEmpty else {
                problems.append("GETTIMESTAMP asked more often than recorded")
                return .timestamp(store.clock)
            }
            let t = answers.removeFirst()
            store.timestampAnswers = answers
            return .timestamp(t)
        case .preparePut(let key):
            if store.objects[key] != nil { return .alreadyHave }
            var offset = Int64(store.partials[key]?.count ?? 0)
            if let size = key.size, offset > size { store.partials[key] = nil; offset = 0 }
            return .putOffset(offset)
        case .receiveData(let key, let offset, let length):
            var partial = store.partials[key] ?? []
            guard Int64(partial.count) >= offset else {
                problems.append("receive \(key) at \(offset), partial has \(partial.count) bytes")
                return .received(complete: false)
            }
            partial.removeSubrange(Int(offset)...)
            let n = Int(min(length, Int64(input.bufferedCount)))
            input.takeBytes(max: n) { partial += $0 }
            store.partials[key] = partial
            if Int64(n) < length && !inputEnded { problems.append("DATA \(length) payload not all available (harness)") }
            return .received(complete: Int64(n) == length)
        case .storeReceived(let key, let valid):
            guard let partial = store.partials.removeValue(forKey: key) else { return .stored(false) }
            // annexd verifies (annex.verify) and discards on a mismatch or INVALID.
            guard valid, Content.verify(key, partial) else { return .stored(false) }
            store.objects[key] = partial
            return .stored(true)
        case .sendContent(let key, let offset, let withValidity):
            guard let content = store.objects[key] else {
                // What git-annex sends for content it does not have.
                send(.data(length: 0))
                sendPayload(announced: 0, [])
                if withValidity { send(.invalid) }
                return .sent(ok: true)
            }
            let start = Int(min(max(offset, 0), Int64(content.count)))
            let body = content[start...]
            send(.data(length: Int64(body.count)))
            if let short = shortSend, short < body.count {
                shortSend = nil
                sendPayload(announced: body.count, body.prefix(short))
                return .sent(ok: false)
            }
            sendPayload(announced: body.count, body)
            if withValidity { send(.valid) }
            return .sent(ok: true)
        case .waitForChange, .connect:
            preconditionFailure("handled in perform")
        }
    }

    private func unlock(_ key: AnnexKey) {
        heldLocks.remove(key)
        store.locks.remove(key)
    }

    /// The session ended: its locks go; partials stay for resume.
    private func finish() {
        for k in heldLocks { store.locks.remove(k) }
        heldLocks.removeAll()
    }
}

enum ClientResult: Equatable, Sendable, CustomStringConvertible {
    case outcome(P2PClientMachine.Outcome)
    case failed(P2PClientMachine.ClientError)
    /// The shell saw the connection end while the machine waited (or could not send).
    case connectionClosed

    var description: String {
        switch self {
        case .outcome(let o): return "\(o)"
        case .failed(let e): return "failed(\(e))"
        case .connectionClosed: return "connectionClosed"
        }
    }
}

/// Does for P2PClientMachine what annexd's P2PClient does, in memory.
final class ClientShell {
    var machine: P2PClientMachine
    var input = LineBuffer()
    var inputEnded = false
    var output: [Wire] = []
    var outbox: [UInt8] = []
    /// Content the client has (to PUT, and what it got).
    var objects: [AnnexKey: [UInt8]] = [:]
    /// Partial downloads kept for resume.
    var partials: [AnnexKey: [UInt8]] = [:]
    var results: [ClientResult] = []
    var problems: [String] = []
    /// `output.count` when the shell found the connection gone; later output goes nowhere.
    var outputCountAtBreak: Int?
    /// Send only this many bytes of the next DATA payload, then the connection breaks.
    var shortSend: Int?
    /// Say INVALID after the next DATA (the file changed while it was sent).
    var sendInvalid = false
    private(set) var closed = false

    init(maxVersion: Int, objects files: [String] = []) {
        machine = P2PClientMachine(maxVersion: maxVersion)
        for f in files { objects[Content.key(f)] = Content.bytes(f) }
    }

    func start() { perform(machine.start(clientUUID: nil, token: nil)) }

    func request(_ r: P2PClientMachine.Request) { perform(machine.request(r)) }

    /// Reads server lines while the machine waits for one.
    func pump() {
        while !closed && !machine.isReady && machine.state != .closed {
            let line: String?
            do {
                line = try input.nextLine()
            } catch {
                problems.append("bad line from the server: \(error)")
                connectionEnded()
                return
            }
            guard let line else {
                if inputEnded { connectionEnded(); results.append(.connectionClosed) }
                return
            }
            guard let m = try? P2PMessage.parse(line) else {
                problems.append("unparsable line from the server: \(line)")
                connectionEnded()
                return
            }
            perform(machine.receive(m))
        }
    }

    /// The client closes its side (end of the command).
    func hangUp() { closed = true }

    private func connectionEnded() {
        if outputCountAtBreak == nil { outputCountAtBreak = output.count }
        machine.closed()
        closed = true
    }

    private func send(_ m: P2PMessage) {
        output.append(.line(m.wireLine))
        outbox += Array(m.wireLine.utf8) + [10]
    }

    private func perform(_ actions: [P2PClientMachine.Action]) {
        var queue = actions[...]
        while let action = queue.popFirst() {
            switch action {
            case .send(let m):
                send(m)
            case .finished(let o):
                results.append(.outcome(o))
            case .failed(let e):
                results.append(.failed(e))
                if machine.state == .closed { closed = true }
            case .receiveData(let key, let offset, let length):
                var partial = partials[key] ?? []
                if Int64(partial.count) < offset { problems.append("GET from \(offset) with a \(partial.count)-byte partial") }
                partial = Array(partial.prefix(Int(offset)))
                let n = Int(min(length, Int64(input.bufferedCount)))
                input.takeBytes(max: n) { partial += $0 }
                partials[key] = partial
                let complete = Int64(n) == length
                if !complete {
                    if !inputEnded { problems.append("DATA \(length) payload not all available (harness)") }
                    if outputCountAtBreak == nil { outputCountAtBreak = output.count }
                }
                queue.append(contentsOf: machine.complete(.dataReceived(complete: complete)))
            case .verify(let key, let valid):
                let got = partials.removeValue(forKey: key) ?? []
                let ok = valid != false && Content.verify(key, got)
                if ok { objects[key] = got }
                queue.append(contentsOf: machine.complete(.verified(ok)))
            case .sendData(let key, let offset):
                guard let content = objects[key] else {
                    problems.append("asked to send \(key), which the client does not have")
                    connectionEnded()
                    return
                }
                let body = content[Int(min(max(offset, 0), Int64(content.count)))...]
                send(.data(length: Int64(body.count)))
                if let short = shortSend, short < body.count {
                    shortSend = nil
                    output.append(.payload(announced: Int64(body.count), Array(body.prefix(short))))
                    outbox += body.prefix(short)
                    connectionEnded()
                    results.append(.connectionClosed)
                    return
                }
                output.append(.payload(announced: Int64(body.count), Array(body)))
                outbox += body
                let valid = !sendInvalid
                sendInvalid = false
                queue.append(contentsOf: machine.complete(.dataSent(valid: valid)))
            }
        }
    }
}

/// A client shell and a server shell joined by in-memory byte pipes.
final class PeerLink {
    let client: ClientShell
    let server: ServerShell

    init(clientMax: Int, serverMax: Int, store: MemoryStore, clientFiles: [String] = []) {
        client = ClientShell(maxVersion: clientMax, objects: clientFiles)
        server = ServerShell(config: .init(serverUUID: RecordedSetup.serverUUID, maxVersion: serverMax,
                                           preauthenticated: true), store: store)
    }

    func connect() -> ClientResult? {
        server.start()
        client.start()
        return settle(since: 0)
    }

    /// One request; its result (the first new one).
    func run(_ r: P2PClientMachine.Request) -> ClientResult? {
        let before = client.results.count
        client.request(r)
        return settle(since: before)
    }

    func hangUp() {
        client.hangUp()
        _ = settle(since: client.results.count)
    }

    /// Moves bytes both ways until neither side has anything more to do.
    private func settle(since: Int) -> ClientResult? {
        for _ in 0..<10_000 {
            var moved = false
            if !client.outbox.isEmpty {
                server.input.append(client.outbox)
                client.outbox.removeAll()
                moved = true
            }
            if client.closed && !server.inputEnded { server.inputEnded = true; moved = true }
            server.pump()
            if !server.outbox.isEmpty {
                client.input.append(server.outbox)
                server.outbox.removeAll()
                moved = true
            }
            if server.isDone && !client.inputEnded { client.inputEnded = true; moved = true }
            client.pump()
            if !moved && client.outbox.isEmpty && server.outbox.isEmpty {
                return client.results.count > since ? client.results[since] : nil
            }
        }
        Issue.record("the link did not settle")
        return nil
    }
}
