import Testing
@testable import Shared

@Suite struct TorControlCommandTests {
    /// RFC 8032 test 1's seed; its ADD_ONION blob is in OnionKeyTests' vectors.
    let key = try! OnionKey(seed: [
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
        0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
    ])
    let blob = "ED25519-V3:MHyDhk8oM8tCei7xwAoBPP3/J2jZgMCjpSDwBpBN6U+bTwr+KAt0aneGhOdUQlAgV7dHOgPwj5b1o46Sh+Afjw=="

    @Test func simpleCommands() throws {
        #expect(TorControlCommand.protocolInfo.line == "PROTOCOLINFO 1")
        #expect(TorControlCommand.protocolInfo.wireBytes == Array("PROTOCOLINFO 1\r\n".utf8))
        #expect(TorControlCommand.takeOwnership.line == "TAKEOWNERSHIP")
        #expect(TorControlCommand.authenticateNull.line == "AUTHENTICATE")
        #expect(TorControlCommand.signal(.newnym).line == "SIGNAL NEWNYM")
        #expect(TorControlCommand.quit.line == "QUIT")
        #expect(try TorControlCommand.getInfo(["version", "status/bootstrap-phase"]).line == "GETINFO version status/bootstrap-phase")
        #expect(try TorControlCommand.setEvents(["HS_DESC", "STATUS_CLIENT"]).line == "SETEVENTS HS_DESC STATUS_CLIENT")
        #expect(try TorControlCommand.setEvents([]).line == "SETEVENTS")
        #expect(try TorControlCommand.resetConf(["__OwningControllerProcess"]).line == "RESETCONF __OwningControllerProcess")
        #expect(try TorControlCommand.setConf([("MaxCircuitDirtiness", "700"), ("Nickname", nil)]).line
                == #"SETCONF MaxCircuitDirtiness="700" Nickname"#)
        #expect(try TorControlCommand.delOnion(key.onionAddress).line == "DEL_ONION " + key.onionAddress.dropLast(6))
        #expect(try TorControlCommand.delOnion(String(key.onionAddress.dropLast(6)).uppercased()).line
                == "DEL_ONION " + key.onionAddress.dropLast(6))
    }

    @Test func authentication() throws {
        #expect(try TorControlCommand.authChallenge(clientNonce: [0x00, 0xAB, 0xff]).line == "AUTHCHALLENGE SAFECOOKIE 00abff")
        let cookie = try TorControlCommand.authenticate(hex: [1, 2, 0xfe])
        #expect(cookie.line == "AUTHENTICATE 0102fe")
        #expect(cookie.description == "AUTHENTICATE [redacted]")
        let password = try TorControlCommand.authenticate(password: #"pa"ss\word x"#)
        #expect(password.line == #"AUTHENTICATE "pa\"ss\\word x""#)
        #expect(!password.description.contains("pa"))
        #expect(throws: TorControlError.self) { try TorControlCommand.authenticate(password: "two\r\nSIGNAL HALT") }
    }

    @Test func addOnionWithOurKey() throws {
        let command = try TorControlCommand.addOnion(
            key: key,
            ports: [TorOnionPort(virtualPort: 80, target: .unix("/run/user/1000/annexd/p2p/abc.sock")),
                    TorOnionPort(virtualPort: 81, target: .tcp(host: "127.0.0.1", port: 8081)),
                    TorOnionPort(virtualPort: 82, target: .tcp(host: "::1", port: 8082)),
                    TorOnionPort(virtualPort: 83)],
            flags: [.detach, .discardPK, .detach], maxStreams: 10)
        #expect(command.line == "ADD_ONION \(blob) Flags=Detach,DiscardPK MaxStreams=10 "
                + "Port=80,unix:/run/user/1000/annexd/p2p/abc.sock Port=81,127.0.0.1:8081 Port=82,[::1]:8082 Port=83")
        #expect(command.keyword == "ADD_ONION")
        #expect(!command.description.contains("MHyD"), "the secret key never reaches a log")
        #expect(command.description.hasPrefix("ADD_ONION [redacted] Flags=Detach"))
        #expect(try TorControlCommand.addOnionNewKey(ports: [TorOnionPort(virtualPort: 80)], flags: [.discardPK]).line
                == "ADD_ONION NEW:ED25519-V3 Flags=DiscardPK Port=80")
        #expect(throws: TorControlError.self) { try TorControlCommand.addOnion(key: key, ports: []) }
    }

    @Test func unixPathsMustBeAbsoluteAndShort() throws {
        let longest = "/" + String(repeating: "a", count: 106)
        #expect(try TorOnionPort(virtualPort: 80, target: .unix(longest)).argument == "Port=80,unix:" + longest)
        #expect(throws: TorControlError.invalidArgument(
            "unix socket path \(String(reflecting: longest + "b")) is 108 bytes; the limit is 107: use a shorter directory (e.g. under $XDG_RUNTIME_DIR)")) {
            try TorOnionPort(virtualPort: 80, target: .unix(longest + "b"))
        }
        for bad in ["relative/sock", "", "/with space", "/with,comma", "/new\nline", "/nul\0"] {
            #expect(throws: TorControlError.self, "\(bad)") { try TorOnionPort(virtualPort: 80, target: .unix(bad)) }
        }
        let error = #expect(throws: TorControlError.self) { try TorOnionPort(virtualPort: 80, target: .unix("p2p/x.sock")) }
        #expect(error?.description.contains("must be absolute") == true)
    }

    @Test func portsAndHostsValidated() {
        for port in [0, 65536, -1] {
            #expect(throws: TorControlError.self) { try TorOnionPort(virtualPort: port) }
            #expect(throws: TorControlError.self) { try TorOnionPort(virtualPort: 80, target: .tcp(host: "127.0.0.1", port: port)) }
        }
        for host in ["", "a b", "a,b", "x\r\nSIGNAL HALT", "unix:/x"] {
            #expect(throws: TorControlError.self, "\(host)") { try TorOnionPort(virtualPort: 80, target: .tcp(host: host, port: 1)) }
        }
    }

    /// Nothing that could end the line or start a second command gets through.
    @Test func injectionRefused() {
        let evil = ["version\r\nSIGNAL HALT", "version\nSIGNAL HALT", "a\0b", "a b", "\"quoted\"", ""]
        for key in evil {
            #expect(throws: TorControlError.self, "\(key)") { try TorControlCommand.getInfo([key]) }
        }
        for name in ["HS_DESC\r\nSIGNAL HALT", "HS DESC", "HS-DESC", ""] {
            #expect(throws: TorControlError.self, "\(name)") { try TorControlCommand.setEvents([name]) }
        }
        #expect(throws: TorControlError.self) { try TorControlCommand.delOnion("abc\r\nSIGNAL HALT") }
        #expect(throws: TorControlError.self) { try TorControlCommand.delOnion("notanonionaddress") }
        #expect(throws: TorControlError.self) { try TorControlCommand.setConf([("Nick\nname", "x")]) }
        #expect(throws: TorControlError.self) { try TorControlCommand.setConf([("Nickname", "x\r\nSIGNAL HALT")]) }
        #expect(throws: TorControlError.self) { try TorControlCommand("GETINFO", ["version\r\nQUIT"]) }
        #expect(throws: TorControlError.self) { try TorControlCommand("GET INFO") }
        #expect(throws: TorControlError.self) { try TorControlCommand.getInfo([]) }
    }
}

@Suite struct TorControlSafeCookieTests {
    // Computed independently with Python 3's hmac module:
    //   cookie = bytes(range(32)); cn = bytes(range(32, 64)); sn = bytes(range(64, 96))
    //   hmac.new(b"Tor safe cookie authentication server-to-controller hash", cookie+cn+sn, hashlib.sha256).hexdigest()
    //   hmac.new(b"Tor safe cookie authentication controller-to-server hash", cookie+cn+sn, hashlib.sha256).hexdigest()
    let cookie = Array(UInt8(0)..<32), clientNonce = Array(UInt8(32)..<64), serverNonce = Array(UInt8(64)..<96)
    let serverHash = TorHex.decode("3c8780ab52365c0d080750447e5f64dabc00428c6c434579c2043e18c1f85389")!
    let clientHash = TorHex.decode("b47642df2d5abb84f69e6d02d41bed6b44aee33e69562528a82166fc98bc0b1e")!

    @Test func hashesMatchPython() {
        #expect(TorSafeCookie.serverHash(cookie: cookie, clientNonce: clientNonce, serverNonce: serverNonce) == serverHash)
        #expect(TorSafeCookie.clientHash(cookie: cookie, clientNonce: clientNonce, serverNonce: serverNonce) == clientHash)
    }

    @Test func responseChecksTheServerHash() throws {
        let challenge = TorAuthChallenge(serverHash: serverHash, serverNonce: serverNonce)
        #expect(try TorSafeCookie.response(cookie: cookie, cookiePath: "/c", clientNonce: clientNonce, challenge: challenge) == clientHash)

        var forged = serverHash
        forged[31] ^= 1
        #expect(throws: TorControlError.serverHashMismatch(cookiePath: "/c")) {
            try TorSafeCookie.response(cookie: cookie, cookiePath: "/c", clientNonce: clientNonce,
                                       challenge: TorAuthChallenge(serverHash: forged, serverNonce: serverNonce))
        }
        #expect(throws: TorControlError.badCookieLength(path: "/c", length: 31)) {
            try TorSafeCookie.response(cookie: Array(cookie.dropLast()), cookiePath: "/c", clientNonce: clientNonce, challenge: challenge)
        }
        #expect(!TorSafeCookie.isValidServerHash(Array(serverHash.dropLast()), cookie: cookie, clientNonce: clientNonce, serverNonce: serverNonce))
    }

    @Test func parsesTorsChallengeReply() throws {
        // As tor 0.4.9 writes it: upper-case hex.
        let reply = TorControlReply(code: 250, "AUTHCHALLENGE SERVERHASH=" + TorHex.encode(serverHash).uppercased()
                                    + " SERVERNONCE=" + TorHex.encode(serverNonce).uppercased())
        #expect(try TorAuthChallenge(reply: reply) == TorAuthChallenge(serverHash: serverHash, serverNonce: serverNonce))
        #expect(throws: TorControlError.self) { try TorAuthChallenge(reply: TorControlReply(code: 250, "AUTHCHALLENGE SERVERHASH=00")) }
        #expect(throws: TorControlError.rejected(command: "AUTHCHALLENGE", code: 513, message: "Invalid base16 client nonce")) {
            try TorAuthChallenge(reply: TorControlReply(code: 513, "Invalid base16 client nonce"))
        }
    }
}
