import Testing
@testable import Shared

/// A stand-in for the mailbox server, in memory, for unit tests only (the real server is
/// exercised in IntegrationTests/WormholeInteropTests). It keeps magic-wormhole-mailbox-server's
/// observable rules: ack every command, `allocate` claims, `open` replays stored messages,
/// `add` is broadcast to every opened side including the sender, a third side is `crowded`.
final class FakeMailbox {
    struct Client {
        var side: String?
        var openedMailbox: String?
        var inbox: [JSONValue] = []
    }
    var clients: [Client] = []
    var nameplates: [String: (mailbox: String, sides: Set<String>)] = [:]
    var mailboxes: [String: (messages: [JSONValue], sides: Set<String>)] = [:]
    var log: [(client: Int, message: JSONValue)] = []
    var welcome: JSONValue = ["motd": "hello from the fake"]
    var nextNameplate = 1

    func connect() -> Int {
        clients.append(Client())
        clients[clients.count - 1].inbox.append(["type": "welcome", "welcome": welcome])
        return clients.count - 1
    }

    func deliver(_ i: Int, _ m: JSONValue) { clients[i].inbox.append(m) }

    func handle(_ i: Int, _ m: JSONValue) {
        log.append((i, m))
        deliver(i, ["type": "ack", "id": .null])
        func error(_ text: String) { deliver(i, ["type": "error", "error": .string(text), "orig": m]) }
        switch m["type"]?.stringValue {
        case "bind": clients[i].side = m["side"]?.stringValue
        case "list": deliver(i, ["type": "nameplates", "nameplates": .array(nameplates.keys.sorted().map { ["id": .string($0)] })])
        case "allocate":
            let np = String(nextNameplate)
            nextNameplate += 1
            nameplates[np] = ("mb\(np)", [clients[i].side!])
            deliver(i, ["type": "allocated", "nameplate": .string(np)])
        case "claim":
            let np = m["nameplate"]!.stringValue!
            var entry = nameplates[np] ?? ("mb\(np)", [])
            entry.sides.insert(clients[i].side!)
            if entry.sides.count > 2 { return error("crowded") }
            nameplates[np] = entry
            deliver(i, ["type": "claimed", "mailbox": .string(entry.mailbox)])
        case "open":
            let mb = m["mailbox"]!.stringValue!
            var entry = mailboxes[mb] ?? ([], [])
            entry.sides.insert(clients[i].side!)
            if entry.sides.count > 2 { return error("crowded") }
            mailboxes[mb] = entry
            clients[i].openedMailbox = mb
            for stored in entry.messages { deliver(i, stored) }
        case "add":
            guard let mb = clients[i].openedMailbox else { return error("must open mailbox before adding") }
            let msg: JSONValue = ["type": "message", "side": .string(clients[i].side!), "phase": m["phase"]!,
                                  "body": m["body"]!, "id": .null]
            mailboxes[mb]!.messages.append(msg)
            for j in clients.indices where clients[j].openedMailbox == mb { deliver(j, msg) }
        case "release": deliver(i, ["type": "released"])
        case "close":
            clients[i].openedMailbox = nil
            deliver(i, ["type": "closed"])
        default: error("unknown type")
        }
    }
}

/// Machines attached to a FakeMailbox, pumped until quiet.
final class Harness {
    let server = FakeMailbox()
    var machines: [MailboxMachine] = []
    var ids: [Int] = []
    var events: [[MailboxEvent]] = []
    var disconnected: [Bool] = []

    @discardableResult
    func add(_ machine: MailboxMachine) -> Int {
        machines.append(machine)
        ids.append(server.connect())
        events.append([])
        disconnected.append(false)
        let k = machines.count - 1
        apply(k, machines[k].connected())
        return k
    }

    func apply(_ k: Int, _ actions: [MailboxMachine.Action]) {
        for a in actions {
            switch a {
            case .send(let m): server.handle(ids[k], m)
            case .event(let e): events[k].append(e)
            case .disconnect: disconnected[k] = true
            }
        }
    }

    func call(_ k: Int, _ f: (inout MailboxMachine) -> [MailboxMachine.Action]) {
        apply(k, f(&machines[k]))
    }

    /// Delivers server messages (as serialized text, like the wire) until nothing moves.
    func pump(limit: Int = 10_000) {
        var steps = 0
        while steps < limit {
            guard let k = machines.indices.first(where: { !disconnected[$0] && !server.clients[ids[$0]].inbox.isEmpty }) else { return }
            let m = server.clients[ids[k]].inbox.removeFirst()
            apply(k, machines[k].received(text: m.serializedBytes()))
            steps += 1
        }
    }

    func messages(_ k: Int) -> [(Int, [UInt8])] {
        events[k].compactMap { if case .message(let p, let b) = $0 { (p, b) } else { nil } }
    }

    func sent(by k: Int, type: String) -> [JSONValue] {
        server.log.filter { $0.client == ids[k] && $0.message["type"]?.stringValue == type }.map(\.message)
    }
}

let textAppID = "lothar.com/wormhole/text-or-file-xfer"

@Suite struct MailboxMachineTests {
    func allocatedCode(_ h: Harness, _ k: Int) -> WormholeCode? {
        for e in h.events[k] { if case .codeAllocated(let c) = e { return c } }
        return nil
    }

    @Test func twoMachinesExchangeTextThroughTheFakeMailbox() throws {
        let h = Harness()
        let a = h.add(MailboxMachine(.init(appID: textAppID)))
        h.call(a) { $0.allocateCode() }
        h.call(a) { $0.send(Array(#"{"offer": {"message": "hi"}}"#.utf8)) }
        h.pump()
        let code = try #require(allocatedCode(h, a))
        #expect(code.nameplate == "1" && code.words.count == 2)
        #expect(h.sent(by: a, type: "add").map { $0["phase"]!.stringValue! } == ["pake"])  // phase 0 waits for the peer

        let b = h.add(MailboxMachine(.init(appID: textAppID)))
        h.call(b) { $0.setCode(try! WormholeCode(parsing: code.text)) }
        h.pump()
        #expect(h.messages(b).map(\.0) == [0])
        #expect(h.messages(b).first.map { String(decoding: $0.1, as: UTF8.self) } == #"{"offer": {"message": "hi"}}"#)
        #expect(h.machines[a].key != nil && h.machines[a].key == h.machines[b].key)
        #expect(h.events[a].contains(.verified) && h.events[b].contains(.verified))
        #expect(h.events[a].contains(.motd("hello from the fake")))
        // Released on the first peer message, once.
        #expect(h.sent(by: a, type: "release").count == 1 && h.sent(by: b, type: "release").count == 1)

        h.call(b) { $0.send(Array(#"{"answer": {"message_ack": "ok"}}"#.utf8)) }
        h.pump()
        #expect(h.messages(a).map(\.0) == [0])
        h.call(a) { $0.close() }
        h.call(b) { $0.close() }
        h.pump()
        #expect(h.events[a].last == .closed(.happy) && h.events[b].last == .closed(.happy))
        #expect(h.disconnected == [true, true])
        #expect(h.sent(by: a, type: "close").first?["mood"] == "happy")
        #expect(h.sent(by: a, type: "release").count == 1)  // not released twice
        // The order on the wire from A: bind, allocate, claim, open, add pake, …
        let types = h.server.log.filter { $0.client == h.ids[a] }.map { $0.message["type"]!.stringValue! }
        #expect(Array(types.prefix(5)) == ["bind", "allocate", "claim", "open", "add"])
        #expect(h.sent(by: a, type: "bind").first?["appid"] == .string(textAppID))
    }

    @Test func wrongCodeIsKeyConfirmationFailureOnBothSides() throws {
        let h = Harness()
        let a = h.add(MailboxMachine(.init(appID: textAppID)))
        h.call(a) { $0.setCode(try! WormholeCode(parsing: "5-adroitness-aardvark")) }
        h.call(a) { $0.send([1, 2, 3]) }
        let b = h.add(MailboxMachine(.init(appID: textAppID)))
        h.call(b) { $0.setCode(try! WormholeCode(parsing: "5-adroitness-absurd")) }
        h.pump()
        for k in [a, b] {
            #expect(h.events[k].contains(.failed(.wrongCode)))
            #expect(!h.events[k].contains(.verified))
            #expect(h.events[k].last == .closed(.scary))
            #expect(h.sent(by: k, type: "close").first?["mood"] == "scary")
        }
        // The app message never left A: it waited for a key confirmation that did not come.
        #expect(!h.sent(by: a, type: "add").contains { $0["phase"] == "0" })
        #expect("\(WormholeError.wrongCode)".hasPrefix("Key confirmation failed"))
    }

    @Test func thirdSideIsCrowded() throws {
        let h = Harness()
        let code = try WormholeCode(parsing: "3-adroitness-aardvark")
        for _ in 0..<2 {
            let k = h.add(MailboxMachine(.init(appID: textAppID)))
            h.call(k) { $0.setCode(code) }
        }
        h.pump()
        let c = h.add(MailboxMachine(.init(appID: textAppID)))
        h.call(c) { $0.setCode(code) }
        h.pump()
        #expect(h.events[c].contains(.failed(.crowded)))
        #expect(h.events[c].last == .closed(.errory))
        #expect(h.events[0].contains(.verified) && h.events[1].contains(.verified))
    }

    @Test func welcomeErrorIsUnwelcome() {
        let h = Harness()
        h.server.welcome = ["error": "go away"]
        let a = h.add(MailboxMachine(.init(appID: textAppID)))
        h.pump()
        #expect(h.events[a].contains(.failed(.unwelcome("go away"))))
        #expect(h.events[a].last == .closed(.unwelcome))
    }

    @Test func welcomeErrorAfterClaimReleasesAndCloses() {
        let h = Harness()
        h.server.welcome = ["error": "go away"]
        let a = h.add(MailboxMachine(.init(appID: textAppID)))
        h.call(a) { $0.setCode(try! WormholeCode(parsing: "3-a-b")) }
        h.pump()
        #expect(h.events[a].contains(.failed(.unwelcome("go away"))))
        #expect(h.events[a].last == .closed(.unwelcome))
        #expect(h.disconnected[a])
    }

    @Test func lonelyCloseAndNameplateList() {
        let h = Harness()
        let a = h.add(MailboxMachine(.init(appID: textAppID)))
        h.call(a) { $0.allocateCode() }
        h.pump()
        let b = h.add(MailboxMachine(.init(appID: textAppID)))
        h.call(b) { $0.listNameplates() }
        h.pump()
        #expect(h.events[b].contains(.nameplates(["1"])))
        h.call(a) { $0.close() }
        h.pump()
        #expect(h.events[a].last == .closed(.lonely))
        #expect(h.sent(by: a, type: "close").first?["mood"] == "lonely")
        #expect(h.sent(by: a, type: "release").first?["nameplate"] == "1")
    }

    /// Python-made pake (from the vectors) fed by hand: the key matches, the early app
    /// message waits for the pake, phases arrive out of order and twice, and are delivered
    /// once and in order.
    @Test func peerMessagesByHand() throws {
        let v = WormholeVectors.spake2[0]
        var m = MailboxMachine(.init(appID: v.str("appid"), side: "aaaaaaaaaa", spakeEntropy: v.hex("entropy_A_hex")))
        _ = m.connected()
        _ = m.setCode(try WormholeCode(parsing: v.str("code_A")))
        let opened = m.received(["type": "claimed", "mailbox": "mb"])
        #expect(opened.first == .send(["type": "open", "mailbox": "mb"]))
        let pakeBody = Hex.encode(JSONValue.object(["pake_v1": .string(Hex.encode(v.hex("msg_A_hex")))]).serializedBytes())
        #expect(opened.contains(.send(["type": "add", "phase": "pake", "body": .string(pakeBody)])))

        let key = v.hex("key_B_hex")
        func peer(_ phase: String, _ plaintext: [UInt8]) -> JSONValue {
            let box = SecretBox.seal(plaintext, key: WormholeKeys.phaseKey(key, side: "bbbbbbbbbb", phase: phase))
            return ["type": "message", "side": "bbbbbbbbbb", "phase": .string(phase), "body": .string(Hex.encode(box))]
        }
        var events: [MailboxEvent] = []
        func feed(_ msg: JSONValue) {
            for a in m.received(msg) { if case .event(let e) = a { events.append(e) } }
        }
        feed(peer("1", Array("second".utf8)))  // before the pake: waits
        #expect(events.isEmpty)
        feed(["type": "message", "side": "bbbbbbbbbb", "phase": "pake",
              "body": .string(Hex.encode(JSONValue.object(["pake_v1": .string(v.str("msg_B_hex"))]).serializedBytes()))])
        #expect(m.key == key)
        feed(peer("version", Array(#"{"app_versions": {"x": 1}}"#.utf8)))
        feed(peer("0", Array("first".utf8)))
        feed(peer("0", Array("again".utf8)))
        feed(peer("dilate-0", Array("ignored".utf8)))
        let msgs = events.compactMap { if case .message(let p, let b) = $0 { (p, String(decoding: b, as: UTF8.self)) } else { nil } }
        #expect(msgs.map(\.0) == [0, 1] && msgs.map(\.1) == ["first", "second"])
        #expect(events.contains(.peerVersions(["x": 1])))
        #expect(events.contains(.verified))
        // Our own echo is ignored.
        #expect(m.received(["type": "message", "side": "aaaaaaaaaa", "phase": "pake", "body": .string(pakeBody)]).isEmpty)
    }

    @Test func garbageFromTheServerIsAnError() {
        var m = MailboxMachine(.init(appID: textAppID))
        _ = m.connected()
        let out = m.received(text: Array("not json".utf8))
        #expect(out.contains { if case .event(.failed(.protocolError)) = $0 { true } else { false } })
    }
}
