/// A git-annex key, e.g. `SHA256E-s6--5891b5…be03.txt`.
///
/// Serialized form (git-annex's Key.hs): `BACKEND[-sSIZE][-mMTIME][-SCHUNKSIZE-CCHUNKNUM]--NAME`.
/// Parsing validates everything that could later become part of a path or a
/// protocol line: a key that parses is safe to turn into an object file name.
public struct AnnexKey: Hashable, Sendable, CustomStringConvertible {
    public var backendName: String
    public var size: Int64?
    public var mtime: Int64?
    public var chunkSize: Int64?
    public var chunkNumber: Int64?
    public var name: String

    /// Longest serialized key accepted. Object files are named after the key,
    /// so it must fit a file name (255 bytes on common file systems).
    public static let maxLength = 255

    public init(backendName: String, size: Int64? = nil, mtime: Int64? = nil,
                chunkSize: Int64? = nil, chunkNumber: Int64? = nil, name: String) {
        self.backendName = backendName
        self.size = size
        self.mtime = mtime
        self.chunkSize = chunkSize
        self.chunkNumber = chunkNumber
        self.name = name
    }

    public var description: String { serialized }

    public var serialized: String {
        var s = backendName
        if let size { s += "-s\(size)" }
        if let mtime { s += "-m\(mtime)" }
        if let chunkSize, let chunkNumber { s += "-S\(chunkSize)-C\(chunkNumber)" }
        return s + "--" + name
    }

    /// The key without chunk fields: what git-annex hashes for the object directory.
    public var nonChunk: AnnexKey {
        var k = self
        k.chunkSize = nil
        k.chunkNumber = nil
        return k
    }

    public var isChunk: Bool { chunkSize != nil || chunkNumber != nil }

    public var backend: Backend { Backend(name: backendName) }
}

public struct KeyError: Error, Equatable, CustomStringConvertible, Sendable {
    public let key: String
    public let reason: String
    public var description: String { "invalid key \"\(Self.printable(key))\": \(reason)" }

    /// Keys in error messages are shown with control characters escaped and
    /// truncated, so a hostile key cannot forge log lines or flood a terminal.
    public static func printable(_ s: String) -> String {
        var out = ""
        for scalar in s.unicodeScalars.prefix(80) {
            if scalar.value < 0x20 || scalar.value == 0x7f {
                out += "\\x" + String(scalar.value, radix: 16)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return s.unicodeScalars.count > 80 ? out + "…" : out
    }
}

extension AnnexKey {
    /// Parses and validates a serialized key. Throws `KeyError` saying what is wrong.
    public init(parsing text: String) throws {
        func fail(_ reason: String) -> KeyError { KeyError(key: text, reason: reason) }
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw fail("empty") }
        guard bytes.count <= Self.maxLength else {
            throw fail("longer than \(Self.maxLength) bytes")
        }
        for b in bytes {
            if b == 0 { throw fail("contains a NUL byte") }
            if b == UInt8(ascii: "/") { throw fail("contains '/'") }
            if b < 0x20 || b == 0x7f || b == UInt8(ascii: " ") {
                throw fail("contains whitespace or a control character")
            }
        }
        if text.contains("..") { throw fail("contains '..'") }

        guard let sep = text.firstRange(of: "--") else { throw fail("no '--' before the key name") }
        let head = text[..<sep.lowerBound]
        let name = String(text[sep.upperBound...])
        guard !name.isEmpty else { throw fail("empty key name after '--'") }

        let parts = head.split(separator: "-", omittingEmptySubsequences: false)
        let backend = String(parts[0])
        guard !backend.isEmpty, backend.utf8.allSatisfy(Self.isBackendChar) else {
            throw fail("backend name must be uppercase letters, digits or '_'")
        }
        var key = AnnexKey(backendName: backend, name: name)
        var seen = Set<Character>()
        for field in parts.dropFirst() {
            guard let letter = field.first else { throw fail("empty field") }
            guard seen.insert(letter).inserted else { throw fail("field -\(letter) given twice") }
            let value = field.dropFirst()
            guard let n = Self.parseNumber(value) else {
                throw fail("field -\(letter) is not a decimal number")
            }
            switch letter {
            case "s": key.size = n
            case "m": key.mtime = n
            case "S": key.chunkSize = n
            case "C": key.chunkNumber = n
            default: throw fail("unknown field -\(letter)")
            }
        }
        if (key.chunkSize == nil) != (key.chunkNumber == nil) {
            throw fail("-S and -C must come together")
        }
        if let c = key.chunkSize, c == 0 { throw fail("chunk size 0") }
        // git-annex's own limit: the extension of an *E key (from its first '.') is at most 64 bytes.
        if key.backend.hasExtension, let dot = name.firstIndex(of: "."), name[dot...].utf8.count > 64 {
            throw fail("extension longer than 64 bytes")
        }
        // Reject non-canonical spellings (field order, leading zeros): the same
        // content must always have one key, one object path.
        guard key.serialized == text else { throw fail("fields out of canonical order") }
        self = key
    }

    static func isBackendChar(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) ||
        (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "_")
    }

    /// Decimal, no sign, no leading zeros (except "0"), fits Int64.
    static func parseNumber<S: StringProtocol>(_ s: S) -> Int64? {
        guard !s.isEmpty, s.utf8.count <= 19, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        if s.utf8.count > 1 && s.utf8.first == UInt8(ascii: "0") { return nil }
        return Int64(s)
    }
}
