import Testing
@testable import Shared

private func parse(_ text: String) throws -> TorControlReply {
    var parser = TorControlReplyParser()
    let replies = try parser.feed(Array(text.utf8))
    try #require(replies.count == 1 && parser.isIdle)
    return replies[0]
}

@Suite struct TorControlRepliesTests {
    @Test func protocolInfo() throws {
        let info = try TorProtocolInfo(reply: parse(
            "250-PROTOCOLINFO 1\r\n"
            + "250-AUTH METHODS=COOKIE,SAFECOOKIE,HASHEDPASSWORD COOKIEFILE=\"/var/run/tor/control.authcookie\" EXTRA=1\r\n"
            + "250-VERSION Tor=\"0.4.9.11\" more\r\n"
            + "250-FUTURE whatever\r\n"
            + "250 OK\r\n"))
        #expect(info == TorProtocolInfo(authMethods: [.cookie, .safeCookie, .hashedPassword],
                                        cookieFile: "/var/run/tor/control.authcookie", torVersion: "0.4.9.11"))
        let null = try TorProtocolInfo(reply: parse("250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n250-VERSION Tor=\"0.4.9.11\"\r\n250 OK\r\n"))
        #expect(null.authMethods == [.null] && null.cookieFile == nil)
        // Escapes in the cookie path are decoded (control-spec: "Controllers MUST handle escape sequences").
        let escaped = try TorProtocolInfo(reply: parse(#"250-PROTOCOLINFO 1"# + "\r\n" + #"250-AUTH METHODS=SAFECOOKIE,FUTURE COOKIEFILE="/tmp/a \"b\"\\c""# + "\r\n250 OK\r\n"))
        #expect(escaped.cookieFile == #"/tmp/a "b"\c"#)
        #expect(escaped.authMethods == [.safeCookie, .other("FUTURE")])
        #expect(throws: TorControlError.self) { try TorProtocolInfo(reply: parse("250 OK\r\n")) }
        #expect(throws: TorControlError.rejected(command: "PROTOCOLINFO", code: 514, message: "Authentication required.")) {
            try TorProtocolInfo(reply: parse("514 Authentication required.\r\n"))
        }
    }

    @Test func addOnion() throws {
        let reply = try TorAddOnionReply(reply: parse(
            "250-ServiceID=4scomt3dymyz5hrqkavihjdcssnqwk5tlor6qhibodmu23niye5usyad\r\n"
            + "250-PrivateKey=ED25519-V3:GPw7Mypbs3kxqudsBN5mA3SpGf7OMgH+wTXe6Qj0E0JKLLq6Zy2MMPnv44NaOCs4VRWBMsaCujuiiDf1I3On9A==\r\n"
            + "250 OK\r\n"))
        #expect(reply.serviceID == "4scomt3dymyz5hrqkavihjdcssnqwk5tlor6qhibodmu23niye5usyad")
        #expect(reply.key?.onionAddress == reply.onionAddress, "tor's key and tor's address agree (recorded from tor 0.4.9.11)")
        let noKey = try TorAddOnionReply(reply: parse("250-ServiceID=abc\r\n250 OK\r\n"))
        #expect(noKey.privateKey == nil)
        #expect(throws: TorControlError.rejected(command: "ADD_ONION", code: 550, message: "Onion address collision")) {
            try TorAddOnionReply(reply: parse("550 Onion address collision\r\n"))
        }
        #expect(throws: TorControlError.self) { try TorAddOnionReply(reply: parse("250 OK\r\n")) }
    }

    @Test func collisionErrorSaysWhatToDo() {
        let error = TorControlError.rejected(command: "ADD_ONION", code: 550, message: "Onion address collision")
        #expect(error.description.contains("550 Onion address collision"))
        #expect(error.description.contains("already running"))
    }

    @Test func getInfoLinesAndDataBlocks() throws {
        let values = try TorKeyValueReply.getInfo(parse(
            "250-version=0.4.9.11\r\n"
            + "250-onions/current=\r\n"
            + "250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY=\"Starting\"\r\n"
            + "250+config-text=\r\nControlSocket /tmp/t/c\r\nSocksPort 0\r\n.\r\n"
            + "250 OK\r\n"))
        #expect(values == [
            "version": "0.4.9.11",
            "onions/current": "",
            "status/bootstrap-phase": "NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY=\"Starting\"",
            "config-text": "ControlSocket /tmp/t/c\nSocksPort 0",
        ])
        #expect(throws: TorControlError.rejected(command: "GETINFO", code: 552, message: "Unrecognized key \"bogus\"")) {
            try TorKeyValueReply.getInfo(parse("552 Unrecognized key \"bogus\"\r\n"))
        }
    }

    @Test func getConf() throws {
        let values = try TorKeyValueReply.getConf(parse("250-SocksPort=0\r\n250-Nickname\r\n250 ControlSocket=\"/tmp/a b\"\r\n"))
        #expect(values.map(\.key) == ["SocksPort", "Nickname", "ControlSocket"])
        #expect(values.map(\.value) == ["0", nil, "/tmp/a b"])
    }
}

@Suite struct TorControlEventTests {
    @Test func hsDescUploaded() throws {
        let event = TorAsyncEvent(reply: try parse(
            "650 HS_DESC UPLOADED 25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid UNKNOWN "
            + "$2C0E8D9F1A2B3C4D5E6F708192A3B4C5D6E7F809~relay1 ZJQsGqrCjdT6XYa9FELnKkAeHhUAUEKWMQ4a/kKgE4c "
            + "HSDIR_INDEX=0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\r\n"))
        guard case .hsDesc(let desc) = event else { Issue.record("not HS_DESC: \(event)"); return }
        #expect(desc.action == .uploaded)
        #expect(desc.address == "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid")
        #expect(desc.authType == "UNKNOWN")
        #expect(desc.hsDir.hasSuffix("~relay1"))
        #expect(desc.descriptorID == "ZJQsGqrCjdT6XYa9FELnKkAeHhUAUEKWMQ4a/kKgE4c")
        #expect(desc.reason == nil)
        #expect(desc.fields["HSDIR_INDEX"]?.count == 64)
        #expect(event.keyword == "HS_DESC")
    }

    @Test func hsDescFailedWithReason() throws {
        let event = TorAsyncEvent(reply: try parse(
            "650 HS_DESC FAILED 25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid NO_AUTH UNKNOWN REASON=QUERY_NO_HSDIR\r\n"))
        guard case .hsDesc(let desc) = event else { Issue.record("not HS_DESC: \(event)"); return }
        #expect(desc.action == .failed)
        #expect(desc.reason == "QUERY_NO_HSDIR")
        #expect(desc.descriptorID == nil)
        guard case .hsDesc(let future) = TorAsyncEvent(reply: try parse("650 HS_DESC NEWTHING x NO_AUTH UNKNOWN\r\n")) else {
            Issue.record("unknown actions are tolerated"); return
        }
        #expect(future.action == .other("NEWTHING"))
    }

    /// Recorded from tor 0.4.9.11 with no way out to the internet.
    @Test func bootstrapProgressAndProblem() throws {
        let progress = TorAsyncEvent(reply: try parse(
            "650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY=\"Connecting to a relay\"\r\n"))
        guard case .bootstrap(let p) = progress else { Issue.record("not BOOTSTRAP: \(progress)"); return }
        #expect(p.severity == "NOTICE" && p.progress == 5 && p.tag == "conn" && p.summary == "Connecting to a relay")
        #expect(!p.isProblem && p.warning == nil && p.recommendation == nil)

        let problem = TorAsyncEvent(reply: try parse(
            "650 STATUS_CLIENT WARN BOOTSTRAP PROGRESS=14 TAG=handshake SUMMARY=\"Handshaking with a relay\" WARNING=\"DONE\" "
            + "REASON=DONE COUNT=2 RECOMMENDATION=ignore HOSTID=\"75C0B7A2650BD317CE0FF4EE37DEA093AAD9019B\" HOSTADDR=\"127.0.0.1:8080\"\r\n"))
        guard case .bootstrap(let w) = problem else { Issue.record("not BOOTSTRAP: \(problem)"); return }
        #expect(w.isProblem && w.progress == 14 && w.tag == "handshake")
        #expect(w.warning == "DONE" && w.reason == "DONE" && w.count == 2 && w.recommendation == "ignore")
        #expect(w.fields["HOSTADDR"] == "127.0.0.1:8080")

        // GETINFO status/bootstrap-phase gives the same text without STATUS_CLIENT.
        let phase = try TorBootstrapStatus(statusLine: "NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY=\"Starting\"")
        #expect(phase.progress == 0 && phase.tag == "starting" && phase.summary == "Starting")
    }

    @Test func everythingElseIsGeneric() throws {
        let conf = try parse("650-CONF_CHANGED\r\n650-MaxCircuitDirtiness=700\r\n650 OK\r\n")
        #expect(TorAsyncEvent(reply: conf) == .other(keyword: "CONF_CHANGED", reply: conf))
        let other = try parse("650 STATUS_CLIENT NOTICE CIRCUIT_ESTABLISHED\r\n")
        #expect(TorAsyncEvent(reply: other) == .other(keyword: "STATUS_CLIENT", reply: other))
        let broken = try parse("650 HS_DESC UPLOADED\r\n")
        #expect(TorAsyncEvent(reply: broken) == .other(keyword: "HS_DESC", reply: broken))
        let badQuote = try parse("650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=5 SUMMARY=\"unterminated\r\n")
        #expect(TorAsyncEvent(reply: badQuote).keyword == "STATUS_CLIENT")
    }
}
