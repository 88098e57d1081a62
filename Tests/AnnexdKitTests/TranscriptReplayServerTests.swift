import Foundation
import Testing
@testable import AnnexdKit
import Shared
import TranscriptSupport

/// Every recorded git-annex P2P session (TranscriptSupport/transcripts, see its README.md),
/// server side, replayed through the real `P2PServerSession` over a socketpair: the session
/// serves a scratch git-annex repository holding what the recorded server held, the test
/// writes the recorded client's bytes and reads the server's. What annexd sends must equal
/// what git-annex-shell sent, except for the deliberate deviations in `ServerDeviations.table`
/// and the value of TIMESTAMP (the host's clock).
@Suite(.timeLimit(minutes: 5)) struct TranscriptReplayServerTests {
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

        // The server's config, from the recording: its UUID from the greeting, the protocol
        // maximum of the git-annex version that served the session.
        let greeting = try #require(t.lines(.server).first)
        let uuid = try #require(greeting.hasPrefix("AUTH-SUCCESS ") ? String(greeting.dropFirst(13)) : nil)
        let config = P2PServerMachine.Config(serverUUID: uuid, maxVersion: serverVersion.maxProtocolVersion,
                                             preauthenticated: true)
        let files = try #require(RecordedSetup.serverContent(atStartOf: file), "no store model for \(file)")
        let repo = try ScratchServerRepo(files: files)

        let run = try SocketpairSession.serve(store: repo.store, config: config, clientBytes: t.stream(.client))
        for p in run.problems { Issue.record("\(file): \(p)") }
        let actual = Wire.items(ofStream: run.serverBytes).map(Self.withoutClock)

        var expected = WireItem.items(of: t, .server).map { WireItem(wire: Self.withoutClock($0.wire), event: $0.event) }
        var servedInstead: (trigger: String, firstReply: Wire)?
        var cursor = 0
        for d in ServerDeviations.table where d.applies(to: file.name, server: serverVersion) {
            switch d.change {
            case .replace(let recorded, let annexd):
                guard let at = WireItem.find(recorded, in: expected, from: cursor) else {
                    Issue.record("\(file): deviation not found in the recording (stale table entry?): \(recorded) — \(d.why)")
                    continue
                }
                expected.replaceSubrange(at..<at + recorded.count,
                                         with: annexd.map { WireItem(wire: $0, event: expected[at].event) })
                cursor = at + annexd.count
            case .servedInstead(let trigger, let firstReply):
                servedInstead = (trigger, firstReply)
            }
        }

        if let (trigger, firstReply) = servedInstead {
            // (v) annexd serves this; git-annex-shell failed. Compared up to the trigger's reply.
            let at = try #require(t.events.firstIndex(of: .line(.client, Array(trigger.utf8))))
            expected = expected.filter { $0.event < at }
            compareWire(Array(actual.prefix(expected.count)), expected, "\(file) server output")
            #expect(actual.count > expected.count && firstReply.matches(actual[expected.count]),
                    "\(file): after \(trigger), expected \(firstReply), got \(actual.dropFirst(expected.count).first.map { "\($0)" } ?? "nothing")")
            return
        }
        compareWire(actual, expected, "\(file) server output")

        // Who ended the session must match: if git-annex-shell hung up before the client,
        // annexd must too; otherwise it must have read the client's stream to its end.
        #expect(run.serverClosedFirst == t.closedFirst(.server),
                "\(file): session closed by server: annexd \(run.serverClosedFirst) (\(run.reports)), git-annex \(t.closedFirst(.server))")
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

    /// TIMESTAMP answers the host's clock (seconds since boot): its value is not compared.
    static func withoutClock(_ w: Wire) -> Wire {
        if case .line(let s) = w, s.hasPrefix("TIMESTAMP ") { return .line("TIMESTAMP <clock>") }
        return w
    }
}

func compareWire(_ actual: [Wire], _ expected: [WireItem], _ label: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    if let m = wireMismatch(actual, expected, label) { Issue.record("\(m)", sourceLocation: sourceLocation) }
}
