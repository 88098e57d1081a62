import Foundation
import Testing
import TranscriptSupport
@testable import Shared

/// CONNECT on the client side: the pure machine, and a replay of the session recorded
/// against git-annex 10.20230126's server (which sends CONNECTDONE twice).
@Suite struct ClientConnectTests {
    static let uuid = RecordedSetup.serverUUID

    /// A machine connected at `version`, ready for a request.
    func ready(version: Int = 1) -> P2PClientMachine {
        var m = P2PClientMachine(maxVersion: version)
        _ = m.start(clientUUID: nil, token: nil)
        _ = m.receive(.authSuccess(uuid: Self.uuid))
        _ = m.receive(.version(version))
        return m
    }

    @Test func relaysBothWaysUntilConnectDone() {
        var m = ready()
        #expect(m.request(.connect(service: "git-upload-pack")) == [.send(.connect(service: "git-upload-pack"))])
        #expect(m.receive(.data(length: 394)) == [.relayToService(length: 394)])
        #expect(m.relayFromService(count: 4) == [.send(.data(length: 4))])
        #expect(m.relayFromService(count: 0) == [], "nothing read, nothing sent")
        // Another request while relaying: refused.
        #expect(m.request(.checkPresent(try! AnnexKey(parsing: "SHA256E-s1--00"))) == [.failed(.busy)])
        #expect(m.receive(.connectDone(exitCode: 0)) == [.finished(.connectDone(exitCode: 0))])
        // 10.20230126 says it twice; then nothing more is relayed.
        #expect(m.receive(.connectDone(exitCode: 0)) == [])
        #expect(m.relayFromService(count: 10) == [])
    }

    @Test func exitCodeIsPassedOn() {
        var m = ready()
        _ = m.request(.connect(service: "git-receive-pack"))
        #expect(m.receive(.connectDone(exitCode: 128)) == [.finished(.connectDone(exitCode: 128))])
    }

    @Test func framesAreBounded() {
        var m = ready()
        _ = m.request(.connect(service: "git-upload-pack"))
        #expect(m.receive(.data(length: P2PClientMachine.maxRelayFrame)) == [.relayToService(length: P2PClientMachine.maxRelayFrame)])
        let big = m.receive(.data(length: P2PClientMachine.maxRelayFrame + 1))
        guard case .failed(.unexpected(let got, _))? = big.last else { Issue.record("\(big)"); return }
        #expect(got == "DATA \(P2PClientMachine.maxRelayFrame + 1)")
        #expect(big.first.map { if case .send(.error) = $0 { true } else { false } } == true, "the server is told: \(big)")
    }

    @Test func unexpectedMessagesAndErrorsEndTheRelay() {
        var m = ready()
        _ = m.request(.connect(service: "git-upload-pack"))
        #expect(m.receive(.error("relaying to git not supported on this connection"))
                == [.failed(.remoteError("relaying to git not supported on this connection"))])
        #expect(m.relayFromService(count: 5) == [])

        var n = ready()
        _ = n.request(.connect(service: "git-upload-pack"))
        let r = n.receive(.success)
        guard case .failed(.unexpected("SUCCESS", let expecting))? = r.last else { Issue.record("\(r)"); return }
        #expect(expecting == "DATA or CONNECTDONE")
    }

    /// The recorded session (hand-written steps, each sent after the server went quiet): the
    /// client's wire must be what was sent, the relayed bytes what the server's
    /// git-upload-pack said, and the second CONNECTDONE read without complaint.
    @Test func replayAgainst10_20230126() throws {
        let t = try TranscriptFile(pair: "10.20230126", name: "server-connect-upload-pack").load()
        // The server's bytes before the client relayed its flush packet, and after.
        var before: [UInt8] = [], after: [UInt8] = [], fromGit: [UInt8] = [], split = false
        var served: [UInt8] = []
        for e in t.events {
            switch e {
            case .line(.client, let b) where String(decoding: b, as: UTF8.self).hasPrefix("DATA"): split = true
            case .payload(.client, let b, _, _): fromGit = b
            case .line(.server, let b): if split { after += b + [10] } else { before += b + [10] }
            case .payload(.server, let b, _, _): before += b; served += b
            default: break
            }
        }
        let shell = ClientShell(maxVersion: 1)
        shell.input.append(before)
        shell.start()
        shell.pump()
        #expect(shell.results == [.outcome(.connected(serverUUID: Self.uuid, version: 1))])
        shell.request(.connect(service: "git-upload-pack"))
        shell.pump()
        #expect(shell.relayed == served && !served.isEmpty)
        shell.relayFromService(fromGit)
        shell.input.append(after)
        shell.inputEnded = true
        shell.pump()
        #expect(Array(shell.results.dropFirst()) == [.outcome(.connectDone(exitCode: 0)), .connectionClosed])
        #expect(shell.problems.isEmpty, "\(shell.problems)")
        #expect(shell.input.bufferedCount == 0)
        compareWire(shell.output, WireItem.items(of: t, .client), "connect-upload-pack client output")
    }

    /// Client machine against server machine in memory: the server stops at its local CONNECT
    /// (its shell relays the service's frames, as GitService does), the client relays both
    /// ways, and the server's CONNECTDONE ends it.
    @Test(arguments: [1, 4])
    func againstTheServerMachine(version: Int) throws {
        let link = PeerLink(clientMax: version, serverMax: 4, store: MemoryStore(files: []))
        #expect(link.connect() == .outcome(.connected(serverUUID: Self.uuid, version: version)))
        let (client, server) = (link.client, link.server)
        client.request(.connect(service: "git-upload-pack"))
        server.input.append(client.outbox)
        client.outbox.removeAll()
        server.pump()
        #expect(server.stoppedAt == .connect(service: "git-upload-pack"))

        // The service's advertisement, framed by the server's shell.
        let advert = Array("003fecb0 refs/heads/master\n0000".utf8)
        client.input.append(Array("DATA \(advert.count)\n".utf8) + advert)
        client.pump()
        #expect(client.relayed == advert)

        // git's answer goes to the service as one frame.
        let want = Array("0000".utf8)
        client.relayFromService(want)
        server.input.append(client.outbox)
        client.outbox.removeAll()
        #expect(try server.input.nextLine() == "DATA 4")
        #expect(server.input.takeBytes(max: 4) { Array($0) } == want)

        let done = server.machine.complete(.serviceFinished(exitCode: 0))
        for case .send(let m) in done { client.input.append(Array((m.wireLine + "\n").utf8)) }
        #expect(done.contains { if case .close = $0 { true } else { false } }, "the server ends the session after CONNECTDONE")
        client.inputEnded = true
        client.pump()
        #expect(Array(client.results.suffix(2)) == [.outcome(.connectDone(exitCode: 0)), .connectionClosed])
        #expect(client.problems.isEmpty && server.problems.isEmpty, "\(client.problems) \(server.problems)")
    }
}
