import CJansson
#if canImport(Glibc)
import Glibc
#endif

/// A JSON value. Objects keep their members in the order they were received or inserted;
/// equality and hashing ignore that order, as JSON does.
///
/// Every JSON text annexd reads or writes goes through jansson (`JSONValue(parsing:)`,
/// `serialized()`): duplicate keys, trailing garbage, invalid UTF-8, integers outside
/// Int64, inputs over a size bound and values nested deeper than a depth bound are refused.
public enum JSONValue: Equatable, Hashable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

// MARK: - Accessors

extension JSONValue {
    public var isNull: Bool { if case .null = self { true } else { false } }
    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var intValue: Int64? { if case .int(let i) = self { i } else { nil } }
    /// The value as a Double, for `.double` and `.int` alike.
    public var doubleValue: Double? {
        switch self {
        case .double(let d): d
        case .int(let i): Double(i)
        default: nil
        }
    }
    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    public var objectValue: JSONObject? { if case .object(let o) = self { o } else { nil } }

    /// The member `key` of an object; nil when this is not an object or has no such member.
    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { o[key] } else { nil }
    }

    /// The element at `index` of an array; nil when this is not an array or the index is out of range.
    public subscript(index: Int) -> JSONValue? {
        guard case .array(let a) = self, a.indices.contains(index) else { return nil }
        return a[index]
    }

    /// "null", "a boolean", "an integer", "a number", "a string", "an array", "an object".
    public var kindDescription: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int: "an integer"
        case .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

// No ExpressibleByNilLiteral: `nil` would silently become `.null` where a `JSONValue?` is meant.
extension JSONValue: ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(literal: elements)) }
}

extension JSONValue: CustomStringConvertible {
    /// The compact JSON text.
    public var description: String { serialized() }
}

// MARK: - JSONObject

/// The members of a JSON object, in insertion order, with unique keys.
/// Setting an existing key replaces its value in place; equality ignores order.
public struct JSONObject: Hashable, Sendable, Sequence, ExpressibleByDictionaryLiteral {
    public typealias Element = (key: String, value: JSONValue)

    private var entries: [Element] = []
    /// Where each key is, once there are more than `indexedFrom` members; a smaller object is
    /// searched in order (most are: an object per transfer, per peer, per event), which keeps a
    /// JSON tree of 10 000 transfers at half the size.
    private var positions: [String: Int]?
    private static let indexedFrom = 16

    public init() {}

    /// Members from pairs; a repeated key keeps its first position and its last value.
    public init(_ pairs: some Sequence<(String, JSONValue)>) {
        for (k, v) in pairs { self[k] = v }
    }

    /// Members written in code: their keys are distinct (checked in debug builds, where the
    /// tests run), so they are taken as they are, without a search per member.
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self.init(literal: elements) }

    init(literal elements: [(String, JSONValue)]) {
        assert(Set(elements.map(\.0)).count == elements.count, "duplicate keys in a JSONObject literal")
        self.init(uniqueEntries: elements.map { (key: $0.0, value: $0.1) })
    }

    /// Members known to have unique keys (parsed by jansson with JSON_REJECT_DUPLICATES).
    init(uniqueEntries: [Element]) {
        entries = uniqueEntries
        reindex()
    }

    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }
    public var keys: [String] { entries.map(\.key) }
    public var values: [JSONValue] { entries.map(\.value) }

    private func position(_ key: String) -> Int? {
        if let positions { return positions[key] }
        return entries.firstIndex { $0.key == key }
    }

    private mutating func reindex() {
        guard entries.count > Self.indexedFrom else { positions = nil; return }
        var p: [String: Int] = [:]
        p.reserveCapacity(entries.count)
        for (i, e) in entries.enumerated() { p[e.key] = i }
        positions = p
    }

    /// The value for `key`; setting nil removes the member.
    public subscript(key: String) -> JSONValue? {
        get { position(key).map { entries[$0].value } }
        set {
            if let i = position(key) {
                if let newValue {
                    entries[i].value = newValue
                } else {
                    entries.remove(at: i)
                    reindex()
                }
            } else if let newValue {
                entries.append((key, newValue))
                if positions != nil { positions![key] = entries.count - 1 } else if entries.count > Self.indexedFrom { reindex() }
            }
        }
    }

    public func makeIterator() -> IndexingIterator<[Element]> { entries.makeIterator() }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for (k, v) in lhs.entries {
            guard let j = rhs.position(k), rhs.entries[j].value == v else { return false }
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        // Order-independent, to agree with ==.
        var sum = 0
        for (k, v) in entries {
            var h = Hasher()
            h.combine(k)
            h.combine(v)
            sum = sum &+ h.finalize()
        }
        hasher.combine(entries.count)
        hasher.combine(sum)
    }
}

// MARK: - Errors

/// A JSON text that was refused, with jansson's explanation and where it happened.
public struct JSONError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// Not JSON at all, or trailing garbage after the value.
        case invalidSyntax = "invalid_json"
        case invalidUTF8 = "invalid_utf8"
        case duplicateKey = "duplicate_key"
        /// An integer outside Int64, or a number outside Double's range.
        case numberOutOfRange = "number_out_of_range"
        /// Arrays and objects nested deeper than the depth bound.
        case tooDeep = "too_deep"
        /// More bytes than the size bound.
        case tooLarge = "too_large"
    }

    public var kind: Kind
    /// What was wrong, with the line and column ("duplicate object key near '"a"' (line 1, column 12)").
    public var message: String
    /// 1-based line and column and 0-based byte position, where known (0 otherwise).
    public var line: Int
    public var column: Int
    public var position: Int

    public init(kind: Kind, message: String, line: Int = 0, column: Int = 0, position: Int = 0) {
        self.kind = kind
        self.message = message
        self.line = line
        self.column = column
        self.position = position
    }

    public var description: String { message }
}

// MARK: - Parsing

extension JSONValue {
    public static let defaultMaxBytes = 1 << 20
    public static let defaultMaxDepth = 64

    /// Parses exactly one JSON text (any value, not only arrays and objects); only whitespace may
    /// follow it. `maxDepth` bounds the nesting of arrays and objects (`[[1]]` has depth 2, a
    /// scalar depth 0).
    public init(parsing bytes: some Collection<UInt8>, maxBytes: Int = defaultMaxBytes,
                maxDepth: Int = defaultMaxDepth) throws(JSONError)
    {
        guard bytes.count <= maxBytes else {
            throw JSONError(kind: .tooLarge,
                            message: "JSON text is \(bytes.count) bytes, more than the limit of \(maxBytes)")
        }
        let result: Result<JSONValue, JSONError>
        if let r = bytes.withContiguousStorageIfAvailable({ Self.parse(UnsafeRawBufferPointer($0), maxDepth: maxDepth) }) {
            result = r
        } else {
            result = Array(bytes).withUnsafeBytes { Self.parse($0, maxDepth: maxDepth) }
        }
        self = try result.get()
    }

    public init(parsing text: String, maxBytes: Int = defaultMaxBytes,
                maxDepth: Int = defaultMaxDepth) throws(JSONError)
    {
        var text = text
        let result = text.withUTF8 { buf -> Result<JSONValue, JSONError> in
            guard buf.count <= maxBytes else {
                return .failure(JSONError(kind: .tooLarge,
                                          message: "JSON text is \(buf.count) bytes, more than the limit of \(maxBytes)"))
            }
            return Self.parse(UnsafeRawBufferPointer(buf), maxDepth: maxDepth)
        }
        self = try result.get()
    }

    private static func parse(_ buffer: UnsafeRawBufferPointer, maxDepth: Int) -> Result<JSONValue, JSONError> {
        var error = json_error_t()
        // No JSON_DISABLE_EOF_CHECK: jansson refuses anything but whitespace after the value.
        let flags = Int(JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL)
        let base = buffer.baseAddress?.assumingMemoryBound(to: CChar.self)
        // jansson wants a non-null pointer even for an empty buffer.
        let root: UnsafeMutablePointer<json_t>?
        if let base {
            root = json_loadb(base, buffer.count, flags, &error)
        } else {
            root = "".withCString { json_loadb($0, 0, flags, &error) }
        }
        guard let root else { return .failure(JSONError(jansson: error)) }
        defer { json_decref(root) }
        do {
            return .success(try convert(root, depth: 0, maxDepth: maxDepth))
        } catch {
            return .failure(error)
        }
    }

    private static func convert(_ json: UnsafeMutablePointer<json_t>, depth: Int,
                                maxDepth: Int) throws(JSONError) -> JSONValue
    {
        switch json.pointee.type {
        case JSON_NULL: return .null
        case JSON_TRUE: return .bool(true)
        case JSON_FALSE: return .bool(false)
        case JSON_INTEGER: return .int(Int64(json_integer_value(json)))
        case JSON_REAL: return .double(json_real_value(json))
        case JSON_STRING:
            return .string(string(json_string_value(json), count: json_string_length(json)))
        case JSON_ARRAY:
            try checkDepth(depth + 1, maxDepth)
            let n = json_array_size(json)
            var items: [JSONValue] = []
            items.reserveCapacity(n)
            for i in 0..<n {
                items.append(try convert(json_array_get(json, i)!, depth: depth + 1, maxDepth: maxDepth))
            }
            return .array(items)
        case JSON_OBJECT:
            try checkDepth(depth + 1, maxDepth)
            var entries: [JSONObject.Element] = []
            entries.reserveCapacity(json_object_size(json))
            var iter = json_object_iter(json)
            while let it = iter {
                let key = string(json_object_iter_key(it), count: json_object_iter_key_len(it))
                let value = try convert(json_object_iter_value(it)!, depth: depth + 1, maxDepth: maxDepth)
                entries.append((key, value))
                iter = json_object_iter_next(json, it)
            }
            return .object(JSONObject(uniqueEntries: entries))
        default:
            preconditionFailure("jansson returned an unknown json_type")
        }
    }

    private static func checkDepth(_ depth: Int, _ maxDepth: Int) throws(JSONError) {
        if depth > maxDepth {
            throw JSONError(kind: .tooDeep,
                            message: "JSON text nests arrays and objects deeper than the limit of \(maxDepth)")
        }
    }

    /// jansson has checked that the bytes are UTF-8, so decoding loses nothing.
    private static func string(_ p: UnsafePointer<CChar>?, count: Int) -> String {
        guard let p, count > 0 else { return "" }
        return p.withMemoryRebound(to: UInt8.self, capacity: count) {
            String(decoding: UnsafeBufferPointer(start: $0, count: count), as: UTF8.self)
        }
    }
}

extension JSONError {
    init(jansson e: json_error_t) {
        var e = e
        let code = json_error_code(&e)
        let text = withUnsafeBytes(of: e.text) { raw -> String in
            let bytes = raw.prefix(Int(JSON_ERROR_TEXT_LENGTH) - 1).prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        let kind: Kind = switch code {
        case json_error_invalid_utf8: .invalidUTF8
        case json_error_duplicate_key: .duplicateKey
        case json_error_numeric_overflow: .numberOutOfRange
        case json_error_stack_overflow: .tooDeep
        default: .invalidSyntax
        }
        let line = Int(e.line), column = Int(e.column), position = Int(e.position)
        var message = text.isEmpty ? "invalid JSON" : text
        if line > 0 { message += " (line \(line), column \(column))" }
        self.init(kind: kind, message: message, line: max(line, 0), column: max(column, 0),
                  position: max(position, 0))
    }
}

// MARK: - Serialization

extension JSONValue {
    /// Compact JSON text in UTF-8, members in their order, no newlines (control characters in
    /// strings are escaped), so it can go on a line-framed wire as is. Non-finite doubles,
    /// which JSON cannot express, are written as null. Each double is written with 15
    /// significant digits when that reads back exactly (0.1, not 0.10000000000000001), else
    /// with 17. The text is byte for byte what jansson's `json_dumpb` writes (JSON_COMPACT,
    /// at that precision); see `JSONWriter`.
    public func serializedBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        JSONWriter.write(self, to: &out)
        return out
    }

    /// Compact JSON text; see `serializedBytes()`.
    public func serialized() -> String {
        String(decoding: serializedBytes(), as: UTF8.self)
    }
}

/// Writes JSON text straight from a `JSONValue`, in the format of jansson's compact dump
/// (annexd's format since its start; `JSONWriterTests` compares the two on generated values).
/// Every reply and event is written here: going through jansson built a second tree of
/// allocations per reply and cost ~4 µs per `daemon.status`, the largest single part of
/// the RPC server's work (BENCHMARKS.md, "RPC: a writer without a second tree").
enum JSONWriter {
    static func write(_ value: JSONValue, to out: inout [UInt8]) {
        switch value {
        case .null: append("null", to: &out)
        case .bool(let b): append(b ? "true" : "false", to: &out)
        case .int(let i): writeInteger(i, to: &out)
        case .double(let d): writeDouble(d, to: &out)
        case .string(let s): writeString(s, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(item, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            out.append(UInt8(ascii: "{"))
            var first = true
            for (key, item) in object {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                writeString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                write(item, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func append(_ s: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    /// Digits written by hand: `description` cost ~60 ns more per integer (`annexd-bench rpc-cpu`).
    static func writeInteger(_ i: Int64, to out: inout [UInt8]) {
        if i >= 0 && i < 10 { out.append(UInt8(ascii: "0") + UInt8(i)); return }
        // At most 20 characters: "-9223372036854775808".
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buf in
            var at = buf.count
            var m = i.magnitude
            repeat {
                at -= 1
                buf[at] = UInt8(ascii: "0") + UInt8(m % 10)
                m /= 10
            } while m > 0
            if i < 0 { at -= 1; buf[at] = UInt8(ascii: "-") }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[at...]))
        }
    }

    /// `%.15g` when that reads back as `d`, else `%.17g`; then as jansson's `jsonp_dtostr`:
    /// ".0" added when there is neither '.' nor 'e', and the exponent without '+' or leading zeros.
    static func writeDouble(_ d: Double, to out: inout [UInt8]) {
        guard d.isFinite else { append("null", to: &out); return }
        let precision: Int32 = significantDigits(d) > 15 ? 17 : 15
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 40) { buf in
            let n = Int(annexd_format_double(buf.baseAddress, buf.count, precision, d))
            precondition(n > 0 && n < buf.count, "printf failed to format a double")
            let text = UnsafeRawBufferPointer(start: buf.baseAddress, count: n).bindMemory(to: UInt8.self)
            guard let e = text.firstIndex(of: UInt8(ascii: "e")) else {
                out.append(contentsOf: text)
                if !text.contains(UInt8(ascii: ".")) { append(".0", to: &out) }
                return
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: text[...e]))
            var rest = text[(e + 1)...]
            if rest.first == UInt8(ascii: "-") { out.append(UInt8(ascii: "-")); rest = rest.dropFirst() }
            if rest.first == UInt8(ascii: "+") { rest = rest.dropFirst() }
            // jansson keeps the exponent's last digit even when it is 0 ("1e0" cannot occur: %g writes "1").
            while rest.count > 1 && rest.first == UInt8(ascii: "0") { rest = rest.dropFirst() }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: rest))
        }
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    /// A quoted string: '"', '\\' and control characters escaped (\b \f \n \r \t, else
    /// \u00XX); everything else, '/' and non-ASCII included, as it is.
    static func writeString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { bytes in
            var runStart = 0
            var i = 0
            while i < bytes.count {
                let b = bytes[i]
                i += 1
                guard b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<(i - 1)]))
                runStart = i
                out.append(UInt8(ascii: "\\"))
                switch b {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(b)
                case 0x08: out.append(UInt8(ascii: "b"))
                case 0x0C: out.append(UInt8(ascii: "f"))
                case 0x0A: out.append(UInt8(ascii: "n"))
                case 0x0D: out.append(UInt8(ascii: "r"))
                case 0x09: out.append(UInt8(ascii: "t"))
                default:
                    append("u00", to: &out)
                    out.append(contentsOf: [hexDigits[Int(b >> 4)], hexDigits[Int(b & 0xF)]])
                }
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...]))
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// The number of significant digits of the shortest decimal that reads back as `d`. Any
/// decimal of at most 15 (DBL_DIG) digits survives a round trip through Double, so "%.15g"
/// prints it exactly when this is at most 15.
private func significantDigits(_ d: Double) -> Int {
    var count = 0, trailingZeros = 0
    for c in d.description.utf8 {
        if c == UInt8(ascii: "e") { break }
        guard c >= 0x30 && c <= 0x39 else { continue }
        if c == 0x30 {
            if count > 0 { trailingZeros += 1 }
        } else {
            count += trailingZeros + 1
            trailingZeros = 0
        }
    }
    return count
}
