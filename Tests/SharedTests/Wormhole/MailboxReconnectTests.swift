import Testing
@testable import Shared

extension Harness {
    /// Machine `k`'s connection drops (what was in flight to it is lost; the server forgets the
    /// connection, keeping nameplates and mailboxes), then it connects again.
    func reconnect(_ k: Int) {
        machines[k].connectionDropped()
        server.clients[ids[k]].inbox = []
        server.clients[ids[k]].openedMailbox = nil
        ids[k] = server.connect()
        apply(k, machines[k].connected())
    }

    /// Delivers machine `k`'s server messages until one of `type` was handled.
    func pump(_ k: Int, until type: String) {
        while !server.clients[ids[k]].inbox.isEmpty {
            let m = server.clients[ids[k]].inbox.removeFirst()
            apply(k, machines[k].received(text: m.serializedBytes()))
            if m["type"]?.stringValue == type { return }
        }
    }
}

/// A dropped mailbox connection resumed as magic-wormhole does: bind with the same side,
/// claim again, open the same mailbox, send again what the server did not echo.
@Suite struct MailboxReconnectTests {
    func code(_ h: Harness, _ k: Int) throws -> WormholeCode {
        try #require(h.events[k].lazy.compactMap { if case .codeAllocated(let c) = $0 { c } else { nil } }.first)
    }

    func wire(_ h: Harness, client: Int) -> [String] {
        h.server.log.filter { $0.client == client }.map { $0.message["type"]!.stringValue! }
    }

    @Test func droppedWhileWaitingForThePeerResumesAndFinishes() throws {
        let h = Harness()
        let a = h.add(MailboxMachine(.init(appID: textAppID)))
        h.call(a) { $0.allocateCode() }
        h.call(a) { $0.send(Array("offer".utf8)) }
        h.pump()
        let side = h.sent(by: a, type: "bind").first?["side"]
        h.reconnect(a)
        // The peer comes while A is reconnecting: its messages wait in the mailbox.
        let b = h.add(MailboxMachine(.init(appID: textAppID)))
        h.call(b) { $0.setCode(try! WormholeCode(parsing: try! code(h, a).text)) }
        h.pump()
        // No pake again (it was echoed); then its version and the offer, once B's pake came.
        #expect(wire(h, client: h.ids[a]) == ["bind", "claim", "open", "release", "add", "add"])
        #expect(h.sent(by: a, type: "add").map { $0["phase"] } == ["version", "0"])
        #expect(h.sent(by: a, type: "bind").last?["side"] == side)
        #expect(h.messages(b).map { String(decoding: $0.1, as: UTF8.self) } == ["offer"])
        h.call(b) { $0.send(Array("ack".utf8)) }
        h.pump()
        #expect(h.messages(a).map { String(decoding: $0.1, as: UTF8.self) } == ["ack"])
        h.call(a) { $0.close() }
        h.call(b) { $0.close() }
        h.pump()
        #expect(h.events[a].last == .closed(.happy) && h.events[b].last == .closed(.happy))
        #expect(!h.events[a].contains(.failed(.connectionLost)))
    }

    @Test func anAddNotEchoedIsSentAgainAndThePeerSeesItOnce() throws {
        let h = Harness()
        let a = h.add(MailboxMachine(.init(appID: textAppID)))
        h.call(a) { $0.allocateCode() }
        h.pump(a, until: "claimed")  // open and add pake went out; the echo is lost with the connection
        #expect(h.sent(by: a, type: "add").map { $0["phase"] } == ["pake"])
        h.reconnect(a)
        h.pump()
        #expect(wire(h, client: h.ids[a]) == ["bind", "claim", "open", "add"])
        #expect(h.sent(by: a, type: "add").map { $0["phase"] } == ["pake"], "sent again on the new connection")
        let b = h.add(MailboxMachine(.init(appID: textAppID)))
        h.call(b) { $0.setCode(try! WormholeCode(parsing: try! code(h, a).text)) }
        h.call(b) { $0.send(Array("hello".utf8)) }
        h.pump()
        #expect(h.messages(a).map { String(decoding: $0.1, as: UTF8.self) } == ["hello"])
        #expect(h.events[a].contains(.verified) && h.events[b].contains(.verified))
    }

    @Test func droppedWhileClosingClosesAfterReconnecting() throws {
        let h = Harness()
        let a = h.add(MailboxMachine(.init(appID: textAppID)))
        h.call(a) { $0.allocateCode() }
        h.pump()
        h.call(a) { $0.close() }  // release and close go out; their answers are lost
        h.reconnect(a)
        #expect(wire(h, client: h.ids[a]) == ["bind", "release", "open", "close"])
        h.pump()
        #expect(h.events[a].last == .closed(.lonely))
        #expect(h.machines[a].resumable == false)
    }

    @Test func givingUpIsConnectionLost() {
        var m = MailboxMachine(.init(appID: textAppID))
        _ = m.connected()
        m.connectionDropped()
        #expect(m.resumable)
        #expect(m.send(Array("x".utf8)).isEmpty, "nothing is sent without a connection")
        let out = m.connectionLost()
        #expect(out == [.event(.failed(.connectionLost)), .event(.closed(.lonely))])
        #expect(m.connected().isEmpty, "closed for good")
    }
}
