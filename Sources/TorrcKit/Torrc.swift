/// A torrc file as a list of entries that keeps every byte of what it read.
///
/// Each entry is one logical line: a blank line, a comment, or an option (`Key value`),
/// which may span several physical lines joined by a trailing backslash, as tor allows.
/// `render()` of an unmodified model returns the input byte for byte; edits only add or
/// remove whole entries, so untouched lines keep their exact bytes (comments, spacing,
/// CRLF, even invalid UTF-8).
///
/// Option names are matched case-insensitively, as tor does. `%include` is kept as an
/// ordinary entry and not followed.
public struct Torrc: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case blank
        case comment
        /// `key` as written (it may carry tor's `+`/`/` prefix); `value` with comments,
        /// continuations and surrounding whitespace removed, and quotes undone.
        case option(key: String, value: String)
    }

    public struct Entry: Sendable, Equatable {
        public var raw: [UInt8]
        public var kind: Kind

        /// The option name without tor's `+`/`/` prefix, or nil for blanks and comments.
        public var name: String? {
            guard case .option(let key, _) = kind else { return nil }
            if let first = key.first, first == "+" || first == "/" { return String(key.dropFirst()) }
            return key
        }

        public var value: String? {
            guard case .option(_, let value) = kind else { return nil }
            return value
        }

        /// True when this is the option `name` (case-insensitive).
        public func isOption(_ name: String) -> Bool {
            self.name?.lowercased() == name.lowercased()
        }
    }

    public var entries: [Entry]

    public init(entries: [Entry] = []) { self.entries = entries }

    /// Parses torrc bytes. Never fails: anything tor would reject is still kept verbatim
    /// (tor --verify-config is the judge of validity).
    public init(bytes: [UInt8]) {
        entries = TorrcParser.entries(bytes)
    }

    public init(text: String) { self.init(bytes: Array(text.utf8)) }

    public func render() -> [UInt8] { entries.flatMap(\.raw) }

    public var text: String { String(decoding: render(), as: UTF8.self) }

    /// Every option entry named `name`, with its index.
    public func options(named name: String) -> [(index: Int, entry: Entry)] {
        entries.enumerated().filter { $0.element.isOption(name) }.map { ($0.offset, $0.element) }
    }

    /// Builds the entry for one new option line, ended by `\n`.
    public static func optionEntry(_ key: String, _ value: String) -> Entry {
        Entry(raw: Array("\(key) \(value)\n".utf8), kind: .option(key: key, value: value))
    }

    public static let blankEntry = Entry(raw: [0x0A], kind: .blank)

    /// Appends entries at the end, first ending the last line with `\n` if it lacked one.
    mutating func append(_ new: [Entry]) {
        if let last = entries.indices.last, entries[last].raw.last != 0x0A {
            entries[last].raw.append(0x0A)
        }
        entries.append(contentsOf: new)
    }
}

/// Splits torrc bytes into entries the way tor's config-line reader groups them.
enum TorrcParser {
    static let newline: UInt8 = 0x0A, backslash: UInt8 = 0x5C, hash: UInt8 = 0x23

    static func entries(_ bytes: [UInt8]) -> [Torrc.Entry] {
        let lines = physicalLines(bytes)
        var result: [Torrc.Entry] = []
        var i = 0
        while i < lines.count {
            let line = lines[i]
            let content = trimmedLeading(line)
            if content.isEmpty || content == [newline] || isAllWhitespace(content) {
                result.append(Torrc.Entry(raw: line, kind: .blank)); i += 1; continue
            }
            if content.first == hash {
                result.append(Torrc.Entry(raw: line, kind: .comment)); i += 1; continue
            }
            // An option: join continuation lines (ending in a backslash right before \n).
            var raw = line
            var logical = withoutContinuation(line)
            var continues = endsWithContinuation(line)
            i += 1
            while continues && i < lines.count {
                let next = lines[i]
                raw += next
                i += 1
                // Inside a continuation tor skips comment lines.
                if trimmedLeading(next).first == hash { continues = true; continue }
                logical += withoutContinuation(next)
                continues = endsWithContinuation(next)
            }
            result.append(Torrc.Entry(raw: raw, kind: option(from: logical)))
        }
        return result
    }

    /// Lines including their `\n`; the last one may lack it.
    static func physicalLines(_ bytes: [UInt8]) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var start = 0
        for (i, b) in bytes.enumerated() where b == newline {
            lines.append(Array(bytes[start...i])); start = i + 1
        }
        if start < bytes.count { lines.append(Array(bytes[start...])) }
        return lines
    }

    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0B || b == 0x0C }
    static func isAllWhitespace(_ s: [UInt8]) -> Bool { s.allSatisfy { isSpace($0) || $0 == newline } }
    static func trimmedLeading(_ s: [UInt8]) -> [UInt8] { Array(s.drop(while: isSpace)) }

    static func endsWithContinuation(_ line: [UInt8]) -> Bool {
        line.count >= 2 && line[line.count - 1] == newline && line[line.count - 2] == backslash
    }

    /// The line's content without its `\n` and without a continuation backslash.
    static func withoutContinuation(_ line: [UInt8]) -> [UInt8] {
        var s = line
        if s.last == newline { s.removeLast() }
        if endsWithContinuation(line) { s.removeLast() }
        return s
    }

    /// Key and value of one logical option line.
    static func option(from logical: [UInt8]) -> Torrc.Kind {
        let s = trimmedLeading(logical)
        let keyBytes = s.prefix { !isSpace($0) && $0 != hash }
        var rest = Array(s.dropFirst(keyBytes.count).drop(while: isSpace))
        let value: String
        if rest.first == 0x22 {
            value = unquote(rest)
        } else {
            if let h = rest.firstIndex(of: hash) { rest = Array(rest[..<h]) }
            while let last = rest.last, isSpace(last) { rest.removeLast() }
            value = String(decoding: rest, as: UTF8.self)
        }
        return .option(key: String(decoding: keyBytes, as: UTF8.self), value: value)
    }

    /// A double-quoted value with C escapes (`\\`, `\"`, `\n`, `\t`, `\r`).
    static func unquote(_ s: [UInt8]) -> String {
        var out: [UInt8] = []
        var i = 1
        while i < s.count, s[i] != 0x22 {
            if s[i] == backslash, i + 1 < s.count {
                i += 1
                switch s[i] {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                default: out.append(s[i])
                }
            } else {
                out.append(s[i])
            }
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}
