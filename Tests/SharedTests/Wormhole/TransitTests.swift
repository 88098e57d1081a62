import Testing
@testable import Shared

@Suite struct TransitTests {
    @Test func handshakesAndRecordKeysMatchMagicWormhole() {
        for v in WormholeVectors.schedules {
            let t = v["transit"]!
            let keys = TransitKeys(transitKey: WormholeKeys.transitKey(v.hex("key_hex")))
            #expect(keys.transitKey == t.hex("transit_key_hex"))
            #expect(keys.senderHandshake == t.hex("sender_handshake_hex") && keys.senderHandshake.count == 87)
            #expect(keys.receiverHandshake == t.hex("receiver_handshake_hex") && keys.receiverHandshake.count == 89)
            #expect(keys.relayHandshake(side: t.str("relay_side")) == t.hex("relay_handshake_hex"))
            #expect(keys.senderRecordKey == t.hex("record_key_sender_hex"))
            #expect(keys.receiverRecordKey == t.hex("record_key_receiver_hex"))
        }
    }

    @Test func recordsMatchMagicWormholesSendRecord() throws {
        for v in WormholeVectors.schedules {
            let keys = TransitKeys(transitKey: WormholeKeys.transitKey(v.hex("key_hex")))
            for r in v["transit"]!["records"]!.arrayValue! {
                let key = r.str("direction") == "sender" ? keys.senderRecordKey : keys.receiverRecordKey
                var writer = TransitRecordWriter(key: key)
                var reader = TransitRecordReader(key: key)
                let plaintexts = r["plaintexts_hex"]!.arrayValue!.map { Hex.decode($0.stringValue!)! }
                let wire = r["wire_hex"]!.arrayValue!.map { Hex.decode($0.stringValue!)! }
                for (p, w) in zip(plaintexts, wire) {
                    #expect(writer.seal(p) == w)
                }
                // Read back from the stream, one byte at a time.
                var got: [[UInt8]] = []
                for byte in wire.joined() {
                    reader.append([byte])
                    while let rec = try reader.next() { got.append(rec) }
                }
                #expect(got == plaintexts)
            }
        }
    }

    @Test func readerRefusesReorderedAndAlteredRecords() throws {
        let key = [UInt8](repeating: 3, count: 32)
        var w = TransitRecordWriter(key: key)
        let r0 = w.seal([1]), r1 = w.seal([2])
        var reader = TransitRecordReader(key: key)
        reader.append(r1)
        #expect(throws: TransitError.badNonce(got: Hex.encode(TransitRecordWriter.nonce(1)), expected: 0)) { try reader.next() }
        var altered = r0
        altered[altered.count - 1] ^= 1
        var reader2 = TransitRecordReader(key: key)
        reader2.append(altered)
        #expect(throws: TransitError.badRecord) { try reader2.next() }
        var reader3 = TransitRecordReader(key: key, maxRecordLength: 10)
        reader3.append(r0)
        #expect(throws: TransitError.recordTooLarge(41)) { try reader3.next() }
    }

    @Test func directHandshakeSenderAndReceiver() {
        let keys = TransitKeys(transitKey: [UInt8](repeating: 9, count: 32))
        var s = TransitHandshake(role: .sender, keys: keys)
        var r = TransitHandshake(role: .receiver, keys: keys)
        let sOut = s.start(), rOut = r.start()
        #expect(sOut == keys.senderHandshake && rOut == keys.receiverHandshake)
        #expect(s.received(rOut).isEmpty && s.state == .peerVerified)
        #expect(r.received(sOut).isEmpty && r.state == .waitingForGo)
        let go = s.choose(true)
        #expect(go == Array("go\n".utf8) && s.state == .ready)
        var w = TransitRecordWriter(key: keys.senderRecordKey)
        let rec = w.seal(Array("data".utf8))
        _ = r.received(go + rec)  // go and the first record in one read
        #expect(r.state == .ready && r.leftover == rec)
    }

    @Test func relayHandshakeWaitsForOK() {
        let keys = TransitKeys(transitKey: [UInt8](repeating: 9, count: 32))
        var s = TransitHandshake(role: .sender, keys: keys)
        let first = s.start(relaySide: "0123456789abcdef")
        #expect(first == keys.relayHandshake(side: "0123456789abcdef"))
        #expect(s.state == .waitingForRelay)
        #expect(s.received(Array("ok\n".utf8)) == keys.senderHandshake)
        #expect(s.state == .waitingForPeerHandshake)
        var bad = TransitHandshake(role: .receiver, keys: keys)
        _ = bad.start(relaySide: "0123456789abcdef")
        _ = bad.received(Array("impatient\n".utf8))
        #expect(bad.state == .failed(.relayRefused("impatient\n")))
    }

    @Test func wrongKeyOrNevermindFails() {
        let keys = TransitKeys(transitKey: [UInt8](repeating: 9, count: 32))
        let other = TransitKeys(transitKey: [UInt8](repeating: 8, count: 32))
        var r = TransitHandshake(role: .receiver, keys: keys)
        _ = r.start()
        _ = r.received(other.senderHandshake.prefix(40))
        #expect(r.state == .failed(.badHandshake))
        var r2 = TransitHandshake(role: .receiver, keys: keys)
        _ = r2.start()
        _ = r2.received(keys.senderHandshake + TransitHandshake.nevermind)
        #expect(r2.state == .failed(.notChosen))
        var s = TransitHandshake(role: .sender, keys: keys)
        _ = s.start()
        _ = s.received(keys.receiverHandshake)
        #expect(s.choose(false) == TransitHandshake.nevermind && s.state == .failed(.notChosen))
    }
}
