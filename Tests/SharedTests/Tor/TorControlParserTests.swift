import Testing
@testable import Shared

/// A transcript in tor's own words (CRLF line ends): PROTOCOLINFO, a GETINFO with a data
/// block (including a dot-stuffed line), a multi-line 650 between replies, an error.
private let transcript = Array((
    "250-PROTOCOLINFO 1\r\n"
    + "250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE=\"/tmp/t/d/control_auth_cookie\"\r\n"
    + "250-VERSION Tor=\"0.4.9.11\"\r\n"
    + "250 OK\r\n"
    + "650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY=\"Connecting to a relay\"\r\n"
    + "250-version=0.4.9.11\r\n"
    + "250+onions/current=\r\n"
    + "l2p5zetsbu54c6cd6tdf2jnbnobpsi2r7j7u5m3gpjljecukuorexrid\r\n"
    + "..starts with a dot\r\n"
    + "\r\n"
    + ".\r\n"
    + "250 OK\r\n"
    + "650-CONF_CHANGED\r\n"
    + "650-MaxCircuitDirtiness=700\r\n"
    + "650 OK\r\n"
    + "552 Unrecognized key \"bogus\"\r\n"
).utf8)

private let expected: [TorControlReply] = [
    TorControlReply(lines: [
        .init(code: 250, kind: .mid, text: "PROTOCOLINFO 1"),
        .init(code: 250, kind: .mid, text: "AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE=\"/tmp/t/d/control_auth_cookie\""),
        .init(code: 250, kind: .mid, text: "VERSION Tor=\"0.4.9.11\""),
        .init(code: 250, kind: .end, text: "OK"),
    ]),
    TorControlReply(code: 650, "STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY=\"Connecting to a relay\""),
    TorControlReply(lines: [
        .init(code: 250, kind: .mid, text: "version=0.4.9.11"),
        .init(code: 250, kind: .data, text: "onions/current=",
              data: "l2p5zetsbu54c6cd6tdf2jnbnobpsi2r7j7u5m3gpjljecukuorexrid\n.starts with a dot\n"),
        .init(code: 250, kind: .end, text: "OK"),
    ]),
    TorControlReply(lines: [
        .init(code: 650, kind: .mid, text: "CONF_CHANGED"),
        .init(code: 650, kind: .mid, text: "MaxCircuitDirtiness=700"),
        .init(code: 650, kind: .end, text: "OK"),
    ]),
    TorControlReply(code: 552, "Unrecognized key \"bogus\""),
]

@Suite struct TorControlParserTests {
    @Test func wholeTranscriptAtOnce() throws {
        var parser = TorControlReplyParser()
        #expect(try parser.feed(transcript) == expected)
        #expect(parser.isIdle)
    }

    /// Split into two chunks at every byte boundary: the same replies, in the same order.
    @Test func splitAtEveryByteBoundary() throws {
        for cut in 0...transcript.count {
            var parser = TorControlReplyParser()
            let replies = try parser.feed(transcript[..<cut]) + parser.feed(transcript[cut...])
            #expect(replies == expected, "cut at \(cut)")
        }
    }

    @Test func oneByteAtATime() throws {
        var parser = TorControlReplyParser()
        var replies: [TorControlReply] = []
        for byte in transcript {
            let completed = try parser.feed([byte])
            #expect(parser.isIdle == !completed.isEmpty, "idle exactly at reply boundaries")
            replies += completed
        }
        #expect(replies == expected)
        #expect(parser.isIdle)
    }

    @Test func replyProperties() {
        #expect(expected[0].isSuccess && !expected[0].isAsync && expected[0].message == "OK")
        #expect(expected[1].isAsync && expected[3].isAsync && !expected[3].isSuccess)
        #expect(!expected[4].isSuccess && expected[4].code == 552)
        #expect(throws: TorControlError.rejected(command: "GETINFO", code: 552, message: "Unrecognized key \"bogus\"")) {
            try expected[4].requireSuccess(for: "GETINFO")
        }
    }

    @Test func bareLineFeedsAndEmptyEndLine() throws {
        var parser = TorControlReplyParser()
        #expect(try parser.feed(Array("250-a=b\n250 OK\n250\r\n".utf8))
                == [TorControlReply(lines: [.init(code: 250, kind: .mid, text: "a=b"), .init(code: 250, kind: .end, text: "OK")]),
                    TorControlReply(code: 250, "")])
    }

    @Test func emptyDataBlock() throws {
        var parser = TorControlReplyParser()
        let replies = try parser.feed(Array("250+config-text=\r\n.\r\n250 OK\r\n".utf8))
        #expect(replies.count == 1)
        #expect(replies.first?.lines.first?.data == "")
        #expect(try TorKeyValueReply.getInfo(replies[0]) == ["config-text": ""])
    }

    @Test func overlongLineRefusedEvenWithoutItsEnd() throws {
        var parser = TorControlReplyParser(maxLineBytes: 100)
        #expect(try parser.feed(Array(("250 " + String(repeating: "x", count: 96) + "\r\n").utf8)).count == 1)
        #expect(throws: TorControlError.lineTooLong(limit: 100)) {
            try parser.feed(Array(("250 " + String(repeating: "x", count: 200)).utf8))
        }
        // Once out of step, always out of step.
        #expect(throws: TorControlError.lineTooLong(limit: 100)) { try parser.feed(Array("250 OK\r\n".utf8)) }
    }

    @Test func overlongCompleteLineRefused() {
        var parser = TorControlReplyParser(maxLineBytes: 10)
        #expect(throws: TorControlError.lineTooLong(limit: 10)) { try parser.feed(Array("250 0123456789\r\n".utf8)) }
    }

    @Test func overlargeReplyRefused() throws {
        var parser = TorControlReplyParser(maxLineBytes: 100, maxReplyBytes: 1000)
        var block = "250+ns/all=\r\n"
        for _ in 0..<20 { block += String(repeating: "r", count: 80) + "\r\n" }
        #expect(throws: TorControlError.replyTooLarge(limit: 1000)) { try parser.feed(Array(block.utf8)) }
        // Many small replies are fine: the bound is per reply.
        var other = TorControlReplyParser(maxLineBytes: 100, maxReplyBytes: 1000)
        #expect(try other.feed(Array(String(repeating: "250 OK\r\n", count: 500).utf8)).count == 500)
    }

    @Test(arguments: ["hello\r\n", "25 OK\r\n", "2500OK\r\n", "250*OK\r\n", "\r\n"])
    func notTheControlProtocol(_ text: String) {
        var parser = TorControlReplyParser()
        #expect(throws: TorControlError.self) { try parser.feed(Array(text.utf8)) }
    }

    @Test func mixedCodesInOneReplyRefused() {
        var parser = TorControlReplyParser()
        #expect(throws: TorControlError.protocolViolation("status 650 inside a reply that began with status 250")) {
            try parser.feed(Array("250-version=1\r\n650 STATUS_CLIENT NOTICE X\r\n250 OK\r\n".utf8))
        }
    }

    @Test func descriptionRestuffsData() {
        #expect(expected[2].description
                == "250-version=0.4.9.11\n250+onions/current=\nl2p5zetsbu54c6cd6tdf2jnbnobpsi2r7j7u5m3gpjljecukuorexrid\n..starts with a dot\n\n.\n250 OK\n")
    }
}

@Suite struct TorControlQuotingTests {
    @Test(arguments: ["", "plain", "with space", "quote\"inside", "back\\slash", "\\\"", "tab\there", "ünïcödé ✓", "end\\"])
    func roundTrip(_ value: String) throws {
        let encoded = try TorQuotedString.encode(value)
        #expect(encoded.hasPrefix("\"") && encoded.hasSuffix("\""))
        #expect(try TorQuotedString.decode(encoded) == value)
    }

    @Test func encodingEscapesOnlyBackslashAndQuote() throws {
        #expect(try TorQuotedString.encode(#"a"b\c d"#) == #""a\"b\\c d""#)
    }

    @Test(arguments: ["line\nbreak", "carriage\rreturn", "nul\0byte"])
    func encodingRefusesLineBreaksAndNul(_ value: String) {
        #expect(throws: TorControlError.self) { try TorQuotedString.encode(value) }
    }

    /// control-spec §2.1.1: \n \t \r and octal are C escapes in what tor writes; others are literal.
    @Test func decodingReadsCStringEscapes() throws {
        #expect(try TorQuotedString.decode(#""a\nb\tc\rd""#) == "a\nb\tc\rd")
        #expect(try TorQuotedString.decode(#""\101\102C\0""#) == "ABC\0")
        #expect(try TorQuotedString.decode(#""\303\251t\303\251""#) == "été")
        #expect(try TorQuotedString.decode(#""\q\"\\""#) == "q\"\\")
        #expect(try TorQuotedString.decode(#""\1234""#) == "S4")
    }

    @Test(arguments: [#""unterminated"#, #"noquote""#, #""ends in backslash\"#, #""\777""#, #""a"b"#])
    func decodingRefusesMalformed(_ text: String) {
        #expect(throws: TorControlError.self) { try TorQuotedString.decode(text) }
    }

    @Test func fieldsWithQuotedValuesAndWords() throws {
        let fields = try TorReplyFields(#"STATUS_CLIENT WARN BOOTSTRAP PROGRESS=14 SUMMARY="Handshaking with a relay" WARNING="a \"b\"" X= "lone quoted""#)
        #expect(fields.positional == ["STATUS_CLIENT", "WARN", "BOOTSTRAP", "lone quoted"])
        #expect(fields["PROGRESS"] == "14")
        #expect(fields["SUMMARY"] == "Handshaking with a relay")
        #expect(fields["WARNING"] == "a \"b\"")
        #expect(fields["X"] == "")
        #expect(fields["missing"] == nil)
    }
}
