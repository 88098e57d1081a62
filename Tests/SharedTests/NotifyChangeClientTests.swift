import Testing
import TranscriptSupport
@testable import Shared

/// The client machine's NOTIFYCHANGE: one request, answered by CHANGED (at once the first
/// time, then when the server's refs change), replayed against stock git-annex's recording
/// and run against annexd's own server machine in memory.
@Suite struct NotifyChangeClientTests {
    static let uuid = RecordedSetup.serverUUID

    private func ready(version: Int = 1) -> P2PClientMachine {
        var m = P2PClientMachine(maxVersion: version)
        _ = m.start(clientUUID: "c", token: "t")
        _ = m.receive(.authSuccess(uuid: Self.uuid))
        _ = m.receive(.version(version))
        return m
    }

    @Test func sendsNotifyChangeAndFinishesOnChanged() {
        var m = ready()
        #expect(m.request(.notifyChange) == [.send(.notifyChange)])
        #expect(!m.isReady)
        #expect(m.receive(.changed(["refs/heads/main", "refs/heads/git-annex"]))
                == [.finished(.changed(["refs/heads/main", "refs/heads/git-annex"]))])
        #expect(m.isReady)
        // Stock git-annex names commit SHAs; an empty CHANGED is a change too.
        _ = m.request(.notifyChange)
        #expect(m.receive(.changed([])) == [.finished(.changed([]))])
    }

    @Test func anErrorReplyFailsTheRequestOnly() {
        var m = ready()
        _ = m.request(.notifyChange)
        #expect(m.receive(.error("change notification not available"))
                == [.failed(.remoteError("change notification not available"))])
        #expect(m.isReady)
    }

    @Test func anythingButChangedIsAProtocolError() {
        var m = ready()
        _ = m.request(.notifyChange)
        let actions = m.receive(.success)
        #expect(actions.last == .failed(.unexpected("SUCCESS", expecting: "CHANGED")))
        #expect(m.request(.notifyChange) == [.failed(.closed)])
    }

    @Test func onlyOneRequestAtATime() {
        var m = ready()
        _ = m.request(.notifyChange)
        #expect(m.request(.checkPresent(try! AnnexKey(parsing: "SHA256E-s1--00"))) == [.failed(.busy)])
    }

    /// git-annex-shell p2pstdio does not serve NOTIFYCHANGE (both versions end the session):
    /// the client sends exactly what git-annex's client sent and reports the closed connection.
    @Test(arguments: TranscriptFixtures.all.filter { $0.name == "server-notifychange-v1" })
    func replayStockP2PStdio(_ file: TranscriptFile) throws {
        let t = try file.load()
        let shell = ClientShell(maxVersion: 1)
        shell.input.append(t.stream(.server))
        shell.inputEnded = true
        shell.start()
        shell.pump()
        #expect(shell.results == [.outcome(.connected(serverUUID: "11111111-1111-4111-8111-111111111111", version: 1))])
        shell.request(.notifyChange)
        shell.pump()
        #expect(shell.results.last == .connectionClosed, "\(file)")
        compareWire(shell.output, WireItem.items(of: t, .client), "\(file) client output")
    }

    /// Against annexd's server machine: the first CHANGED, then one per change, on one connection.
    @Test(arguments: [0, 1, 4])
    func againstTheServerMachine(version v: Int) {
        let link = PeerLink(clientMax: v, serverMax: v, store: MemoryStore(files: []))
        #expect(link.connect() == .outcome(.connected(serverUUID: Self.uuid, version: v)))
        #expect(link.run(.notifyChange) == nil, "the server waits for its refs")
        #expect(link.server.stoppedAt == .waitForChange)
        #expect(link.serverAnswers(.changed(["refs/heads/main"])) == .outcome(.changed(["refs/heads/main"])))
        #expect(link.run(.notifyChange) == nil)
        #expect(link.serverAnswers(.changed(["refs/heads/git-annex"])) == .outcome(.changed(["refs/heads/git-annex"])))
        #expect(link.client.problems.isEmpty && link.server.problems.isEmpty)
    }
}
