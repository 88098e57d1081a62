import Testing
@testable import Shared

@Suite struct WormholeWordListTests {
    @Test func listsMatchMagicWormhole() {
        let words = WormholeVectors.json["words"]!.arrayValue!
        #expect(words.count == 256)
        #expect(WordList.even.count == 256 && WordList.odd.count == 256)
        for (i, pair) in words.enumerated() {
            #expect(WordList.even[i] == pair[0]!.stringValue!)
            #expect(WordList.odd[i] == pair[1]!.stringValue!)
        }
        #expect(Set(WordList.evenLowercase).count == 256)
        #expect(Set(WordList.oddLowercase).count == 256)
        #expect(Set(WordList.evenLowercase + WordList.oddLowercase).count == 512)
        #expect(WordList.even.first == "aardvark" && WordList.even.last == "Zulu")
        #expect(WordList.odd.first == "adroitness" && WordList.odd.last == "Yucatan")
    }

    @Test func generatedCodesAlternateOddEven() throws {
        var bytes: [UInt8] = [0x00, 0xff, 0x82, 0x83]
        let code = try WormholeCode.generate(nameplate: "4", wordCount: 4, randomByte: { bytes.removeFirst() })
        #expect(code.text == "4-adroitness-zulu-istanbul-mohawk")
        #expect(code.nameplate == "4")
        #expect(code.unlistedWords.isEmpty)
        for _ in 0..<50 {
            let c = try WormholeCode.generate(nameplate: "123")
            #expect(c.words.count == 2)
            #expect(WordList.oddLowercase.contains(String(c.words[0])))
            #expect(WordList.evenLowercase.contains(String(c.words[1])))
            #expect(try WormholeCode(parsing: c.text) == c)
        }
    }

    @Test func completionsMatchMagicWormhole() {
        for v in WormholeVectors.json["completions"]!.arrayValue! {
            let prefix = v.str("prefix")
            let n = Int(v["num_words"]!.intValue!)
            let expected = v["completions"]!.arrayValue!.map { $0.stringValue! }
            #expect(CodeCompleter.wordCompletions(of: prefix, wordCount: n) == expected, "prefix \(prefix)")
        }
    }

    @Test func completesWholeLines() {
        #expect(CodeCompleter.completions(of: "", nameplates: ["4", "12", "13"]) == ["12-", "13-", "4-"])
        #expect(CodeCompleter.completions(of: "1", nameplates: ["4", "12", "13"]) == ["12-", "13-"])
        #expect(CodeCompleter.completions(of: "4-pur") == [])
        #expect(CodeCompleter.completions(of: "4-purple-sa") == ["4-purple-sailboat", "4-purple-sawdust"])
        #expect(CodeCompleter.completions(of: "4-adroitn") == ["4-adroitness-"])
        #expect(CodeCompleter.completions(of: "4-").count == 256)
    }
}

@Suite struct WormholeCodeTests {
    @Test func parsesCodes() throws {
        let c = try WormholeCode(parsing: "4-purple-sausages")
        #expect(c.nameplate == "4" && c.words == ["purple", "sausages"])
        // "purple" is an even-list word at an odd-list position; "sausages" is no PGP word.
        #expect(c.unlistedWords == ["purple", "sausages"])
        #expect(try WormholeCode(parsing: "0-").words == [""])
        #expect(try WormholeCode(parsing: "10-a-b-c").words == ["a", "b", "c"])
        #expect(try WormholeCode(userInput: "  7 crossover clockwork\n").text == "7-crossover-clockwork")
    }

    @Test(arguments: [
        ("", WormholeCodeError.empty),
        ("4-purple sausages", .containsWhitespace("4-purple sausages")),
        ("4", .missingWords("4")),
        ("x-purple", .nameplateNotNumeric("x-purple", nameplate: "x")),
        ("-purple", .nameplateNotNumeric("-purple", nameplate: "")),
        ("purple", .nameplateNotNumeric("purple", nameplate: "purple")),
        ("4\u{7}-a", .containsControlCharacter("4\u{7}-a")),
        (String(repeating: "1", count: 41) + "-a", .nameplateTooLong(String(repeating: "1", count: 41))),
    ])
    func refusesBadCodes(text: String, error: WormholeCodeError) {
        #expect(throws: error) { try WormholeCode(parsing: text) }
    }

    @Test func errorsSayWhatToDo() {
        #expect("\(WormholeCodeError.missingWords("4"))".contains("add '-' and the words"))
        #expect("\(WormholeCodeError.nameplateNotNumeric("x-y", nameplate: "x"))".contains("must start with a number"))
    }

    @Test func passwordIsNFC() throws {
        let decomposed = try WormholeCode(parsing: "12-caf\u{65}\u{301}-zulu")
        let composed = try WormholeCode(parsing: "12-caf\u{e9}-zulu")
        #expect(decomposed.passwordBytes == composed.passwordBytes)
        #expect(composed.passwordBytes == Array("12-caf\u{e9}-zulu".utf8))
    }
}

@Suite struct SPAKE2Tests {
    @Test func elementsMatchPythonSPAKE2() {
        let e = WormholeVectors.json["elements"]!
        #expect(Hex.encode(Ed25519.symmetricElement) == e.str("S_hex"))
        #expect(Hex.encode(Ed25519.symmetricElement) == "6f00dae87c1be1a73b5922ef431cd8f57879569c222d22b1cd71e8546ab8e6f1")
        #expect(Ed25519.arbitraryElement(seed: Array("M".utf8)).map(Hex.encode) == e.str("M_hex"))
        #expect(Ed25519.arbitraryElement(seed: Array("N".utf8)).map(Hex.encode) == e.str("N_hex"))
        #expect(Ed25519.arbitraryElement(seed: []).map(Hex.encode) == e.str("empty_seed_hex"))
        #expect(Ed25519.isValidPoint(Ed25519.symmetricElement))
    }

    @Test func sideAMatchesPythonSideB() throws {
        for v in WormholeVectors.spake2 {
            let appid = Array(v.str("appid").utf8)
            let a = try SPAKE2Symmetric(password: WormholeCode.nfcBytes(v.str("code_A")), idSymmetric: appid,
                                        entropy: v.hex("entropy_A_hex"))
            #expect(a.password == v.hex("password_A_hex"))
            #expect(a.passwordScalar == v.hex("pw_scalar_A_le_hex"))
            #expect(a.secretScalar == v.hex("x_A_le_hex"))
            #expect(a.outboundMessage == v.hex("msg_A_hex"), "\(v.str("code_A"))")
            // The peer's message made by python-spake2.
            let key = try a.finish(v.hex("msg_B_hex"))
            #expect(key == v.hex("key_A_hex"))
        }
    }

    @Test func sideBMatchesToo() throws {
        for v in WormholeVectors.spake2 {
            let b = try SPAKE2Symmetric(password: WormholeCode.nfcBytes(v.str("code_B")),
                                        idSymmetric: WormholeCode.nfcBytes(v.str("appid")), entropy: v.hex("entropy_B_hex"))
            #expect(b.passwordScalar == v.hex("pw_scalar_B_le_hex"))
            #expect(b.outboundMessage == v.hex("msg_B_hex"))
            #expect(try b.finish(v.hex("msg_A_hex")) == v.hex("key_B_hex"))
        }
    }

    @Test func swiftToSwift() throws {
        let code = try WormholeCode.generate(nameplate: "7")
        let a = try SPAKE2Symmetric(code: code, appID: "lothar.com/wormhole/text-or-file-xfer")
        let b = try SPAKE2Symmetric(code: code, appID: "lothar.com/wormhole/text-or-file-xfer")
        #expect(a.outboundMessage != b.outboundMessage)
        #expect(try a.finish(b.outboundMessage) == b.finish(a.outboundMessage))
    }

    @Test func wrongPasswordOrAppidGivesDifferentKeys() throws {
        let wrong = WormholeVectors.spake2.last!
        #expect(wrong.str("code_A") != wrong.str("code_B"))
        #expect(wrong.hex("key_A_hex") != wrong.hex("key_B_hex"))
        let a = try SPAKE2Symmetric(code: WormholeCode(parsing: "4-purple-sausages"), appID: "x")
        let b = try SPAKE2Symmetric(code: WormholeCode(parsing: "4-purple-sausage"), appID: "x")
        #expect(try a.finish(b.outboundMessage) != b.finish(a.outboundMessage))
        let c = try SPAKE2Symmetric(code: WormholeCode(parsing: "4-purple-sausages"), appID: "y")
        #expect(try a.finish(c.outboundMessage) != c.finish(a.outboundMessage))
    }

    @Test func refusesBadMessages() throws {
        let a = try SPAKE2Symmetric(password: [1, 2], idSymmetric: [])
        var msg = a.outboundMessage
        #expect(throws: SPAKE2Error.reflection) { try a.finish(msg) }
        msg[0] = 0x41
        #expect(throws: SPAKE2Error.offSides(0x41)) { try a.finish(msg) }
        #expect(throws: SPAKE2Error.badMessageLength(32)) { try a.finish(Array(msg.dropFirst())) }
        let identity: [UInt8] = [0x53, 1] + [UInt8](repeating: 0, count: 31)
        #expect(throws: SPAKE2Error.invalidElement) { try a.finish(identity) }
    }
}

@Suite struct WormholeKeyScheduleTests {
    @Test func matchesMagicWormhole() throws {
        for v in WormholeVectors.schedules {
            let key = v.hex("key_hex")
            #expect(WormholeKeys.verifier(key) == v.hex("verifier_hex"))
            for pk in v["phase_keys"]!.arrayValue! {
                #expect(WormholeKeys.phaseKey(key, side: pk.str("side"), phase: pk.str("phase")) == pk.hex("key_hex"))
            }
            for box in v["boxes"]!.arrayValue! {
                let pk = WormholeKeys.phaseKey(key, side: box.str("side"), phase: box.str("phase"))
                let sealed = SecretBox.seal(box.hex("plaintext_hex"), key: pk, nonce: box.hex("nonce_hex"))
                #expect(sealed == box.hex("body_hex"))
                #expect(SecretBox.open(box.hex("body_hex"), key: pk) == box.hex("plaintext_hex"))
                var tampered = box.hex("body_hex")
                tampered[tampered.count - 1] ^= 1
                #expect(SecretBox.open(tampered, key: pk) == nil)
                #expect(SecretBox.open(box.hex("body_hex"), key: WormholeKeys.phaseKey(key, side: "other", phase: box.str("phase"))) == nil)
            }
            for d in v["derive_key"]!.arrayValue! {
                #expect(WormholeKeys.deriveKey(key, purpose: d.hex("purpose_hex"), count: Int(d["length"]!.intValue!)) == d.hex("out_hex"))
            }
            let t = v["transit"]!
            #expect(WormholeKeys.transitKey(key) == t.hex("transit_key_hex"))
        }
    }

    @Test func randomNoncesDiffer() {
        let key = [UInt8](repeating: 7, count: 32)
        let a = SecretBox.seal([1, 2, 3], key: key), b = SecretBox.seal([1, 2, 3], key: key)
        #expect(a != b && a.count == 43)
        #expect(SecretBox.open(a, key: key) == [1, 2, 3])
        #expect(SecretBox.open([1, 2], key: key) == nil)
    }
}
