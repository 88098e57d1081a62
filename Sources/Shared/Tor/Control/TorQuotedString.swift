/// Tor's QuotedString (control-spec §2.1 and §2.1.1).
///
/// To tor: a backslash before `\` and `"`, nothing else escaped (tor reads a backslash before
/// any other character as that character, so there is no way to send CR, LF or NUL: those are
/// refused). From tor: many strings tor writes are really CStrings, so decoding follows the
/// spec's future-proof rule: `\n` `\t` `\r` and octal `\0`…`\377` are C escapes, a backslash
/// before anything else is that character.
public enum TorQuotedString {
    /// `"` + value with `\` and `"` escaped + `"`. Throws for CR, LF or NUL, which no quoting can carry.
    public static func encode(_ value: String) throws(TorControlError) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\r", "\n", "\0":
                throw .invalidArgument("a quoted string cannot hold CR, LF or NUL (tor's QuotedString has no escape for them)")
            case "\\", "\"":
                out.unicodeScalars.append("\\")
                out.unicodeScalars.append(scalar)
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// Decodes a whole quoted string (it must start and end with `"`).
    public static func decode(_ text: String) throws(TorControlError) -> String {
        let (value, rest) = try decode(prefixOf: Substring(text))
        guard rest.isEmpty else { throw .protocolViolation("text after the closing quote of \(String(reflecting: text))") }
        return value
    }

    /// Decodes the quoted string `text` starts with; returns it and the text after the closing quote.
    public static func decode(prefixOf text: Substring) throws(TorControlError) -> (value: String, rest: Substring) {
        let bytes = Array(text.utf8)
        guard bytes.first == UInt8(ascii: "\"") else {
            throw .protocolViolation("expected a quoted string, got \(String(reflecting: String(text.prefix(40))))")
        }
        var out: [UInt8] = []
        var i = 1
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                let rest = Substring(String(decoding: bytes[(i + 1)...], as: UTF8.self))
                return (String(decoding: out, as: UTF8.self), rest)
            }
            guard b == UInt8(ascii: "\\") else { out.append(b); i += 1; continue }
            guard i + 1 < bytes.count else { break }
            let e = bytes[i + 1]
            switch e {
            case UInt8(ascii: "n"): out.append(0x0A); i += 2
            case UInt8(ascii: "t"): out.append(0x09); i += 2
            case UInt8(ascii: "r"): out.append(0x0D); i += 2
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                var value = 0, digits = 0
                while digits < 3, i + 1 + digits < bytes.count,
                      (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(bytes[i + 1 + digits]) {
                    value = value * 8 + Int(bytes[i + 1 + digits] - UInt8(ascii: "0"))
                    digits += 1
                }
                guard value <= 255 else { throw .protocolViolation("octal escape above \\377 in a quoted string") }
                out.append(UInt8(value))
                i += 1 + digits
            default:
                out.append(e); i += 2
            }
        }
        throw .protocolViolation("quoted string without a closing quote: \(String(reflecting: String(text.prefix(80))))")
    }
}

/// The space-separated words and `KEY=VALUE` pairs of a reply or event line, where a value
/// is either a run of non-space characters or a QuotedString (`SUMMARY="Connecting to a relay"`).
/// Words before, between and after the pairs are kept in order as `positional`.
public struct TorReplyFields: Sendable, Equatable {
    public var positional: [String] = []
    /// In the order tor sent them; keys may repeat.
    public var pairs: [(key: String, value: String)] = []

    public init(_ line: some StringProtocol) throws(TorControlError) {
        var rest = Substring(line)
        while true {
            rest = rest.drop(while: { $0 == " " })
            guard let first = rest.first else { break }
            if first == "\"" {
                let (value, after) = try TorQuotedString.decode(prefixOf: rest)
                positional.append(value)
                rest = after
                continue
            }
            let word = rest.prefix(while: { $0 != " " })
            if let eq = word.firstIndex(of: "="), eq != word.startIndex {
                let key = String(rest[..<eq])
                let valueStart = rest[rest.index(after: eq)...]
                if valueStart.first == "\"" {
                    let (value, after) = try TorQuotedString.decode(prefixOf: valueStart)
                    pairs.append((key, value))
                    rest = after
                } else {
                    let value = valueStart.prefix(while: { $0 != " " })
                    pairs.append((key, String(value)))
                    rest = valueStart[value.endIndex...]
                }
            } else {
                positional.append(String(word))
                rest = rest[word.endIndex...]
            }
        }
    }

    /// The first value for `key` (keys are case-sensitive, as tor writes them).
    public subscript(key: String) -> String? { pairs.first { $0.key == key }?.value }

    public static func == (a: TorReplyFields, b: TorReplyFields) -> Bool {
        a.positional == b.positional && a.pairs.elementsEqual(b.pairs) { $0.key == $1.key && $0.value == $1.value }
    }
}
