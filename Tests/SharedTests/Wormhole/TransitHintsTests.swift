import Testing
import Shared

struct TransitHintsTests {
    @Test func helperForms() throws {
        #expect(try TransitEndpoint(helper: "tcp:transit.magic-wormhole.io:4001") == TransitEndpoint(host: "transit.magic-wormhole.io", port: 4001))
        #expect(try TransitEndpoint(helper: "tcp:[::1]:4001") == TransitEndpoint(host: "::1", port: 4001))
        #expect(try TransitEndpoint(helper: "tcp:127.0.0.1:4001:priority=2.0") == TransitEndpoint(host: "127.0.0.1", port: 4001))
        for bad in ["127.0.0.1:4001", "tcp:127.0.0.1", "tcp::4001", "tcp:h:0", "tcp:h:99999", "tcp:h:1:foo=1", "tcp:[::1:4001"] {
            #expect(throws: TransitHintError.self, "\(bad)") { try TransitEndpoint(helper: bad) }
        }
        do { _ = try TransitEndpoint(helper: "udp:h:1") } catch { #expect("\(error)".contains("expected tcp:HOST:PORT")) }
    }

    @Test func pythonTransitMessageParses() throws {
        // As the 0.24 CLI sends it (facts sheet §9.3), with a tor hint and junk added.
        let text = #"{"abilities-v1": [{"type": "direct-tcp-v1"}, {"type": "relay-v1"}], "hints-v1": [{"type": "direct-tcp-v1", "priority": 0.0, "hostname": "127.0.0.1", "port": 39049}, {"type": "tor-tcp-v1", "priority": 0.0, "hostname": "x.onion", "port": 80}, {"type": "direct-tcp-v1", "hostname": "h", "port": "80"}, {"type": "relay-v1", "hints": [{"type": "direct-tcp-v1", "priority": 0.0, "hostname": "127.0.0.1", "port": 4001}]}]}"#
        let hints = TransitHints(json: try JSONValue(parsing: Array(text.utf8)))
        #expect(hints.direct == [TransitEndpoint(host: "127.0.0.1", port: 39049)])
        #expect(hints.relays == [TransitEndpoint(host: "127.0.0.1", port: 4001)])
        #expect(TransitHints(json: hints.json) == hints)
    }

    @Test func offerAndAck() throws {
        let offer = try JSONValue(parsing: FileTransferMessage.offer(filename: "a b", size: 5))
        #expect(offer["offer"]?["file"]?["filesize"]?.intValue == 5)
        #expect(FileTransferMessage.safeFilename("../../etc/passwd") == "passwd")
        #expect(FileTransferMessage.safeFilename("..") == "received")
        let ack = try JSONValue(parsing: FileTransferMessage.transitAck(sha256: [0xab, 0x01]))
        #expect(ack["sha256"]?.stringValue == "ab01" && ack["ack"]?.stringValue == "ok")
    }
}
