import CJansson
import Foundation
import Testing
@testable import Shared

/// annexd writes JSON with its own writer (`JSONWriter`) in jansson's format. jansson is the
/// oracle here: on generated values of every kind, the writer's text is byte for byte what
/// `json_dumpb` writes (JSON_COMPACT), and it reads back as the value it came from.
@Suite struct JSONWriterTests {
    /// A small deterministic generator (SplitMix64), so a failure names a seed that repeats it.
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

        mutating func string() -> String {
            let pieces: [String] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\r", "\t", "\u{8}", "\u{C}", "\u{0}", "\u{1}",
                                    "\u{1F}", "\u{7F}", "é", "€", "😀", "\u{2028}", "key", "daemon.status", "{}[]:,"]
            return (0..<below(12)).map { _ in pieces[below(pieces.count)] }.joined()
        }

        mutating func double() -> Double {
            switch below(5) {
            case 0: return Double(bitPattern: next())  // anything, NaN and infinities included
            case 1: return Double(below(2_000_000)) / 1000 - 1000
            case 2: return [0.1, 0.2, 0.30000000000000004, 1.0 / 3.0, 1e300, -1.5e-7, 2, 0, -0.0, 1e15, 1e16, 123456789012345.6,
                            5e-324, 1.7976931348623157e308, 1e-5, 100][below(16)]
            case 3: return Double(Int64(bitPattern: next()))
            default: return Double(sign: below(2) == 0 ? .plus : .minus, exponent: below(200) - 100, significand: 1 + Double(below(1000)) / 1000)
            }
        }

        mutating func value(depth: Int = 0) -> JSONValue {
            switch below(depth > 3 ? 6 : 8) {
            case 0: return .null
            case 1: return .bool(below(2) == 0)
            case 2: return .int([0, 1, -1, 9, 10, Int64.max, Int64.min, Int64(bitPattern: next())][below(8)])
            case 3: return .double(double())
            case 4, 5: return .string(string())
            case 6: return .array((0..<below(5)).map { _ in value(depth: depth + 1) })
            default:
                var o = JSONObject()
                // jansson reads no NUL in a key (its own refusal, tested in JSONValueTests).
                for _ in 0..<below(5) { o[string().replacingOccurrences(of: "\u{0}", with: "0")] = value(depth: depth + 1) }
                return .object(o)
            }
        }
    }

    /// jansson's text for `value`, each double at the precision annexd picks for it: 15 digits
    /// when "%.15g" reads back exactly (checked here with strtod, not with the writer's rule), else 17.
    static func janssonText(_ value: JSONValue) -> String {
        func dumped(_ json: UnsafeMutablePointer<json_t>, precision: Int) -> String {
            defer { json_decref(json) }
            let flags = Int(JSON_COMPACT | JSON_ENCODE_ANY) | (precision << 11)
            let size = json_dumpb(json, nil, 0, flags)
            var buf = [CChar](repeating: 0, count: size)
            #expect(json_dumpb(json, &buf, size, flags) == size)
            return String(decoding: buf.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        func string(_ s: String) -> String {
            withCBytes(s) { dumped(json_stringn_nocheck($0, $1)!, precision: 17) }
        }
        switch value {
        case .null: return dumped(json_null(), precision: 17)
        case .bool(let b): return dumped(b ? json_true() : json_false(), precision: 17)
        case .int(let i): return dumped(json_integer(json_int_t(i)), precision: 17)
        case .double(let d):
            guard d.isFinite else { return "null" }
            let short = String(cString: [CChar](unsafeUninitializedCapacity: 40) { buf, n in
                n = Int(annexd_format_double(buf.baseAddress, 40, 15, d)) + 1
            })
            return dumped(json_real(d), precision: strtod(short, nil) == d ? 15 : 17)
        case .string(let s): return string(s)
        case .array(let items): return "[" + items.map(janssonText).joined(separator: ",") + "]"
        case .object(let o): return "{" + o.map { string($0.key) + ":" + janssonText($0.value) }.joined(separator: ",") + "}"
        }
    }

    @Test(arguments: 0..<8)
    func theWriterWritesWhatJanssonWrites(seed: Int) throws {
        var g = Generator(state: UInt64(seed))
        for round in 0..<500 {
            let value = g.value()
            let text = value.serialized()
            #expect(text == Self.janssonText(value), "seed \(seed), round \(round)")
            #expect(!text.contains("\n"))
            // Reads back as what it came from, with non-finite doubles as null.
            #expect(try JSONValue(parsing: text).serialized() == text, "seed \(seed), round \(round)")
        }
    }

    /// Without doubles, the whole value as one jansson tree, dumped once, gives the same text
    /// (so separators and member order are checked against jansson too, not only leaves).
    @Test func wholeTreesWithoutDoublesMatchJansson() throws {
        func tree(_ v: JSONValue) -> UnsafeMutablePointer<json_t> {
            switch v {
            case .null, .double: return json_null()
            case .bool(let b): return b ? json_true() : json_false()
            case .int(let i): return json_integer(json_int_t(i))
            case .string(let s): return Self.withCBytes(s) { json_stringn_nocheck($0, $1)! }
            case .array(let items):
                let a = json_array()!
                for item in items { json_array_append_new(a, tree(item)) }
                return a
            case .object(let o):
                let object = json_object()!
                for (key, item) in o {
                    _ = Self.withCBytes(key) { json_object_setn_new_nocheck(object, $0, $1, tree(item)) }
                }
                return object
            }
        }
        var g = Generator(state: 99)
        var checked = 0
        for round in 0..<2000 {
            let value = g.value()
            guard !Self.hasDouble(value) else { continue }
            let json = tree(value)
            defer { json_decref(json) }
            let flags = Int(JSON_COMPACT | JSON_ENCODE_ANY)
            let size = json_dumpb(json, nil, 0, flags)
            var buf = [CChar](repeating: 0, count: size)
            _ = json_dumpb(json, &buf, size, flags)
            #expect(value.serialized() == String(decoding: buf.map { UInt8(bitPattern: $0) }, as: UTF8.self), "round \(round)")
            checked += 1
        }
        #expect(checked > 500)
    }

    /// The UTF-8 bytes of `s` as a C pointer (never null) and a length.
    static func withCBytes<R>(_ s: String, _ body: (UnsafePointer<CChar>, Int) -> R) -> R {
        var bytes = Array(s.utf8).map { CChar(bitPattern: $0) }
        bytes.append(0)
        return bytes.withUnsafeBufferPointer { body($0.baseAddress!, $0.count - 1) }
    }

    static func hasDouble(_ v: JSONValue) -> Bool {
        switch v {
        case .double: true
        case .array(let a): a.contains(where: hasDouble)
        case .object(let o): o.contains { hasDouble($0.value) }
        default: false
        }
    }

    @Test func repliesAreWrittenAsTheirJSONValues() {
        let ok = RPCResponse(id: "a\"b", result: ["x": [1, 2.5, "é\n"]])
        #expect(ok.serializedBytes() == ok.json.serializedBytes())
        let failed = RPCResponse(id: .null, error: .invalidRequest(reason: "not_an_object", "a request must be a JSON object"))
        #expect(failed.serializedBytes() == failed.json.serializedBytes())
        let batch = RPCReply.batch([ok, failed])
        #expect(batch.serializedBytes() == batch.json?.serializedBytes())
        #expect(RPCReply.none.serializedBytes() == nil)
    }
}
