import Testing
@testable import Shared

@Suite struct RPCJSONValueTests {
    private func parse(_ text: String, maxBytes: Int = JSONValue.defaultMaxBytes,
                       maxDepth: Int = JSONValue.defaultMaxDepth) throws -> JSONValue
    {
        try JSONValue(parsing: text, maxBytes: maxBytes, maxDepth: maxDepth)
    }

    private func parseError(_ bytes: [UInt8], maxBytes: Int = JSONValue.defaultMaxBytes,
                            maxDepth: Int = JSONValue.defaultMaxDepth) -> JSONError?
    {
        do {
            _ = try JSONValue(parsing: bytes, maxBytes: maxBytes, maxDepth: maxDepth)
            return nil
        } catch {
            return error
        }
    }

    private func parseError(_ text: String, maxBytes: Int = JSONValue.defaultMaxBytes,
                            maxDepth: Int = JSONValue.defaultMaxDepth) -> JSONError?
    {
        parseError(Array(text.utf8), maxBytes: maxBytes, maxDepth: maxDepth)
    }

    // MARK: Round trips

    @Test func roundTripKeepsOrderAndEveryKind() throws {
        let text = #"{"z":1,"a":[true,false,null,1.5,-2,"x\u00e9\n"],"m":{"y":{},"b":[]},"e":""}"#
        let v = try parse(text)
        #expect(v.serialized() == #"{"z":1,"a":[true,false,null,1.5,-2,"xé\n"],"m":{"y":{},"b":[]},"e":""}"#)
        #expect(v.objectValue?.keys == ["z", "a", "m", "e"])
        #expect(try parse(v.serialized()) == v)
    }

    @Test(arguments: [
        "null", "true", "false", "0", "-1", "3.25", "\"s\"", "[]", "{}", "[[],[{}]]",
        #"{"k":[1,{"n":null}]}"#, "-9223372036854775808", "9223372036854775807", "1e+300",
    ])
    func roundTripsAnyTopLevelValue(_ text: String) throws {
        let v = try parse(text)
        #expect(try parse(v.serialized()) == v)
    }

    @Test func compactAndOneLine() throws {
        let v = try parse("{ \"a\" : [ 1 ,\n 2 ] ,\t\"b\":\"line1\\nline2\\r\\u0001\" }\n")
        let out = v.serialized()
        #expect(out == #"{"a":[1,2],"b":"line1\nline2\r\u0001"}"#)
        #expect(!out.utf8.contains(0x0A) && !out.utf8.contains(0x0D))
    }

    @Test func keepsUTF8AndDecodesSurrogatePairs() throws {
        let v = try parse(#"["\ud83d\ude00","ü","/"]"#)
        #expect(v == ["😀", "ü", "/"])
        #expect(v.serialized() == #"["😀","ü","/"]"#)
    }

    @Test func nulInsideStringsSurvivesButNotInKeys() throws {
        let v = try parse(#"{"key":"a\u0000b"}"#)
        #expect(v["key"] == .string("a\u{0}b"))
        #expect(v.serialized() == #"{"key":"a\u0000b"}"#)
        #expect(try parse(v.serialized()) == v)
        let e = try #require(parseError(#"{"k\u0000ey":1}"#))
        #expect(e.message.contains("NUL byte in object key"))
    }

    @Test func doublesRoundTripExactly() throws {
        for d in [0.1, 1.0 / 3.0, 1234567890123456, 0.30000000000000004, -2.5e-300, 1.7976931348623157e308, Double.leastNonzeroMagnitude] {
            let v = JSONValue.double(d)
            #expect(try parse(v.serialized()) == v, "\(d)")
        }
        #expect(JSONValue.double(2).serialized() == "2.0")
        #expect(JSONValue.array([0.1, 0.25, 100.0, 7, -1.5e-7, 1e300]).serialized() == "[0.1,0.25,100.0,7,-1.5e-7,1e300]")
        // Each double at its own precision: 0.1 stays short beside one that needs 17 digits.
        #expect(JSONValue.array([0.1, .double(1.0 / 3.0)]).serialized() == "[0.1,0.33333333333333331]")
        #expect(JSONValue.double(123456789012345).serialized() == "123456789012345.0")
        #expect(JSONValue.double(1234567890123456).serialized() == "1234567890123456.0")
        #expect(try parse("2.0") == .double(2))
        #expect(try parse("2") == .int(2))
        #expect(try parse("1e2") == .double(100))
    }

    @Test func nonFiniteDoublesAreWrittenAsNull() {
        #expect(JSONValue.array([.double(.nan), .double(.infinity), .double(-.infinity)]).serialized() == "[null,null,null]")
    }

    @Test func builtValuesSerializeInInsertionOrder() {
        var o: JSONObject = ["b": 1, "a": 2]
        o["c"] = "x"
        o["b"] = 3  // replaced in place
        #expect(JSONValue.object(o).serialized() == #"{"b":3,"a":2,"c":"x"}"#)
        o["b"] = nil
        #expect(o.keys == ["a", "c"])
        #expect(o["c"] == "x")
        o["b"] = true
        #expect(JSONValue.object(o).serialized() == #"{"a":2,"c":"x","b":true}"#)
        #expect(JSONValue.object(JSONObject([("k", 1), ("k", 2)])).serialized() == #"{"k":2}"#)
        let special: JSONValue = ["": 1, "quote\"back\\slash": "tab\t", "é": []]
        #expect(special.serialized() == #"{"":1,"quote\"back\\slash":"tab\t","é":[]}"#)
    }

    @Test func objectEqualityIgnoresOrderButSerializationDoesNot() throws {
        let a = try parse(#"{"a":1,"b":[1,2]}"#)
        let b = try parse(#"{"b":[1,2],"a":1}"#)
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(Set([a, b]).count == 1)
        #expect(a.serialized() != b.serialized())
        #expect(try parse(#"{"a":1}"#) != parse(#"{"a":1,"b":2}"#))
        #expect(try parse(#"{"a":1}"#) != parse(#"{"b":1}"#))
        #expect(try parse("[1,2]") != parse("[2,1]"))
        #expect(JSONValue.int(1) != JSONValue.double(1))
    }

    @Test func accessors() throws {
        let v = try parse(#"{"s":"x","i":3,"d":0.5,"b":true,"n":null,"a":[1],"o":{"k":"v"}}"#)
        #expect(v["s"]?.stringValue == "x")
        #expect(v["i"]?.intValue == 3)
        #expect(v["i"]?.doubleValue == 3)
        #expect(v["d"]?.doubleValue == 0.5)
        #expect(v["b"]?.boolValue == true)
        #expect(v["n"]?.isNull == true)
        #expect(v["a"]?[0] == 1)
        #expect(v["a"]?[1] == nil)
        #expect(v["o"]?["k"] == "v")
        #expect(v["missing"] == nil)
        #expect(v["s"]?["k"] == nil)
        #expect(v[0] == nil)
        #expect(v["o"]?.objectValue?.count == 1)
        #expect(v["a"]?.arrayValue == [1])
    }

    // MARK: Refusals

    @Test(arguments: [#"{"a":1,"a":2}"#, #"{"x":{"a":1,"b":2,"a":3}}"#, #"[{"k":1},{"k":2,"k":2}]"#])
    func duplicateKeysAreRefused(_ text: String) throws {
        let e = try #require(parseError(text))
        #expect(e.kind == .duplicateKey)
        #expect(e.message.contains("duplicate object key"))
        #expect(e.line == 1 && e.column > 0)
    }

    @Test func depthLimit() throws {
        func nested(_ n: Int) -> String { String(repeating: "[", count: n) + String(repeating: "]", count: n) }
        #expect(try parse(nested(64)) != .null)
        let e = try #require(parseError(nested(65)))
        #expect(e.kind == .tooDeep)
        #expect(e.message.contains("64"))

        let objects = String(repeating: #"{"a":"#, count: 3) + "1" + String(repeating: "}", count: 3)
        #expect(try parse(objects, maxDepth: 3)["a"]?["a"]?["a"] == 1)
        #expect(parseError(objects, maxDepth: 2)?.kind == .tooDeep)
        #expect(try parse("1", maxDepth: 0) == 1)
        #expect(parseError("[]", maxDepth: 0)?.kind == .tooDeep)

        // Deeper than jansson's own parser limit (2048): refused as too deep too, not a crash.
        #expect(parseError(nested(5000), maxDepth: 10000)?.kind == .tooDeep)
    }

    @Test func sizeLimit() throws {
        let text = #"["abcdef"]"#  // 10 bytes
        #expect(try parse(text, maxBytes: 10) == ["abcdef"])
        let e = try #require(parseError(text, maxBytes: 9))
        #expect(e.kind == .tooLarge)
        #expect(e.message.contains("10 bytes") && e.message.contains("9"))
        #expect(parseError(Array(text.utf8), maxBytes: 9)?.kind == .tooLarge)
        // The default is 1 MiB.
        let big = "\"" + String(repeating: "x", count: 1 << 20) + "\""
        #expect(parseError(big)?.kind == .tooLarge)
    }

    @Test(arguments: ["{} x", "1 2", "{}{}", "[1]]", "\"a\" \"b\"", "null,"])
    func trailingGarbageIsRefused(_ text: String) throws {
        let e = try #require(parseError(text))
        #expect(e.kind == .invalidSyntax)
        #expect(e.message.contains("line 1"))
    }

    @Test func trailingWhitespaceIsFine() throws {
        #expect(try parse("{} \n\t\r\n") == [:])
    }

    @Test(arguments: ["", "   ", "{", "[1,]", "{\"a\"}", "nul", "'x'", "{a:1}", "01", "+1", ".5", "NaN", "[1 2]"])
    func syntaxErrors(_ text: String) throws {
        #expect(parseError(text)?.kind == .invalidSyntax)
    }

    @Test(arguments: [
        [0x22, 0xFF, 0x22],  // not UTF-8 at all
        [0x22, 0xC0, 0xAF, 0x22],  // overlong '/'
        [0x22, 0xED, 0xA0, 0x80, 0x22],  // UTF-16 surrogate encoded in UTF-8
        [0x22, 0xE2, 0x82, 0x22],  // truncated sequence
    ] as [[UInt8]])
    func nonUTF8IsRefused(_ bytes: [UInt8]) throws {
        let e = try #require(parseError(bytes))
        #expect(e.kind == .invalidUTF8)
    }

    @Test func lineAndColumnInErrors() throws {
        let e = try #require(parseError("{\n  \"a\": 1,\n  \"b\": ]\n}"))
        #expect(e.kind == .invalidSyntax)
        #expect(e.line == 3)
        #expect(e.column > 0)
        #expect(e.message.contains("line 3, column \(e.column)"))
        #expect(e.position > 0)
    }

    @Test func bigIntegers() throws {
        #expect(try parse("9223372036854775807") == .int(.max))
        #expect(try parse("-9223372036854775808") == .int(.min))
        #expect(try parse("[9223372036854775807]").serialized() == "[9223372036854775807]")
        for text in ["9223372036854775808", "-9223372036854775809", "[123456789012345678901234567890]", "1e400", "-1e400"] {
            let e = try #require(parseError(text), "\(text)")
            #expect(e.kind == .numberOutOfRange, "\(text)")
        }
    }

    @Test func parsesFromAnyByteCollection() throws {
        let bytes = Array(#"{"a":[1]}"#.utf8)
        #expect(try JSONValue(parsing: bytes[...]) == ["a": [1]])
        #expect(try JSONValue(parsing: bytes.reversed().reversed()) == ["a": [1]])
    }

    @Test func largeInputWithinBoundsParses() throws {
        let items = (0..<20000).map { JSONValue.object(["i": .int(Int64($0)), "s": "x"]) }
        let v = JSONValue.array(items)
        let text = v.serialized()
        #expect(text.utf8.count < JSONValue.defaultMaxBytes)
        #expect(try parse(text) == v)
    }

    /// A large value's text is its members' texts joined (order, escapes in keys and strings,
    /// doubles, nesting), checked against jansson's own reading and against a small value.
    @Test func largeValuesAreWrittenPieceByPieceAsOneWouldBe() throws {
        let member: JSONValue = ["k\"ey\n": "v\u{1}é", "d": .double(0.1), "e": .double(1.0 / 3.0), "n": .null, "a": [true, 2]]
        let small = JSONValue.array([member, member])
        #expect(small.serialized() == "[" + member.serialized() + "," + member.serialized() + "]")
        var big = JSONObject()
        for i in 0..<300 { big["m\(i)"] = i % 7 == 0 ? .array(Array(repeating: member, count: 3)) : member }
        let v: JSONValue = ["result": ["transfers": .object(big), "total": 300]]
        let text = v.serialized()
        #expect(try parse(text) == v)
        let expected = #"{"result":{"transfers":{"# + (0..<300).map { i in
            "\"m\(i)\":" + (i % 7 == 0 ? JSONValue.array(Array(repeating: member, count: 3)) : member).serialized()
        }.joined(separator: ",") + #"},"total":300}}"#
        #expect(text == expected)
        #expect(!text.contains("\n"))
    }

    /// Objects up to 16 members are searched in order, larger ones through an index: both
    /// find, replace and remove members alike, and keep their order.
    @Test(arguments: [3, 16, 17, 40])
    func membersAreFoundReplacedAndRemovedAtAnySize(count: Int) {
        var o = JSONObject()
        for i in 0..<count { o["k\(i)"] = .int(Int64(i)) }
        o["k1"] = "one"
        o["k0"] = nil
        o["new"] = true
        #expect(o.count == count + 1 - 1)
        #expect(o["k1"] == "one" && o["k0"] == nil && o["new"] == true && o["k\(count - 1)"] == .int(Int64(count - 1)))
        #expect(o.keys == (1..<count).map { "k\($0)" } + ["new"])
        var same = JSONObject()
        for k in o.keys.reversed() { same[k] = o[k] }
        #expect(same == o)
    }
}
