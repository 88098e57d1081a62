/// Strict checks for every value annex-tor-helper takes. Each returns the parsed value or
/// throws a `HelperFailure` with reason `.invalidArgument` that says what was wrong.
public enum HelperValidation {
    /// Longest unix socket path tor can use (sun_path is 108 bytes with its NUL).
    public static let maxSocketPathBytes = 107

    /// A decimal uid, 0 ... 4294967294, no sign, no leading zeros. uid 0 is accepted, as
    /// git-annex enable-tor accepts it: an annexd running as root serves its own socket.
    /// (Under pkexec the uid must still be the caller's, PKEXEC_UID.)
    public static func uid(_ s: String) throws(HelperFailure) -> UInt32 {
        guard isDecimal(s), s.count <= 10, let v = UInt64(s), v <= 4_294_967_294 else {
            throw .invalid("--uid must be a decimal user id (0-4294967294), got \(quoted(s))")
        }
        return UInt32(v)
    }

    /// A git-annex repository UUID as git-annex makes them: lowercase hex 8-4-4-4-12.
    public static func repoUUID(_ s: String) throws(HelperFailure) -> String {
        let groups = s.split(separator: "-", omittingEmptySubsequences: false)
        let ok = groups.map(\.count) == [8, 4, 4, 4, 12]
            && groups.allSatisfy { $0.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) } }
        guard ok else {
            throw .invalid("--repo-uuid must be a git-annex UUID (lowercase hex, 8-4-4-4-12), got \(quoted(s))")
        }
        return s
    }

    /// 1 ... 65535, decimal, no leading zeros.
    public static func port(_ s: String) throws(HelperFailure) -> Int {
        guard isDecimal(s), s.count <= 5, let v = Int(s), (1...65535).contains(v) else {
            throw .invalid("--port must be 1-65535, got \(quoted(s))")
        }
        return v
    }

    /// A POSIX portable user/group name: [A-Za-z0-9._-], not starting with '-', 1-32 chars.
    public static func groupName(_ s: String) throws(HelperFailure) -> String {
        let bytes = Array(s.utf8)
        let ok = (1...32).contains(bytes.count) && bytes.first != UInt8(ascii: "-")
            && bytes.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
        guard ok else { throw .invalid("--group must be a POSIX portable group name, got \(quoted(s))") }
        return s
    }

    /// An absolute, normalized path (no `.`/`..`/empty components, no trailing slash) with
    /// no whitespace, control characters or torrc-special characters (`#`, `"`, `\`).
    public static func absolutePath(_ s: String, flag: String) throws(HelperFailure) -> String {
        guard s.hasPrefix("/") else { throw .invalid("\(flag) must be an absolute path, got \(quoted(s))") }
        guard s.utf8.count <= 4095,
              s.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F && !"#\"\\".unicodeScalars.contains($0) }) else {
            throw .invalid("\(flag) contains whitespace, control or torrc-special characters: \(quoted(s))")
        }
        if s == "/" { return s }
        let components = s.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        guard !components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw .invalid("\(flag) must be a normalized path (no //, ., .. or trailing /), got \(quoted(s))")
        }
        return s
    }

    /// Seconds to wait for tor, 1 ... 3600.
    public static func timeout(_ s: String) throws(HelperFailure) -> Int {
        guard isDecimal(s), s.count <= 4, let v = Int(s), (1...3600).contains(v) else {
            throw .invalid("--timeout must be 1-3600 seconds, got \(quoted(s))")
        }
        return v
    }

    /// A reload command split on single spaces into argv (no shell, no quoting). The program
    /// is an absolute path or a bare name looked up in fixed system directories only.
    public static func reloadCommand(_ s: String) throws(HelperFailure) -> [String] {
        let words = s.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard !s.isEmpty, !words.contains(where: \.isEmpty),
              s.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
            throw .invalid("--reload-command must be words separated by single spaces, got \(quoted(s))")
        }
        let program = words[0]
        if program.contains("/") { _ = try absolutePath(program, flag: "--reload-command program") }
        return words
    }

    /// A unix socket path tor can bind or connect to.
    public static func socketPath(_ path: String) throws(HelperFailure) -> String {
        guard path.utf8.count <= maxSocketPathBytes else {
            throw .invalid("socket path \(path) is \(path.utf8.count) bytes; tor needs at most \(maxSocketPathBytes)")
        }
        return path
    }

    static func isDecimal(_ s: String) -> Bool {
        guard let first = s.utf8.first, s.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return false }
        return first != UInt8(ascii: "0") || s == "0"
    }

    static func isAlnum(_ b: UInt8) -> Bool {
        (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b)
    }

    /// A value shown in an error message, with control characters made visible.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default:
                if u.value < 0x20 || u.value == 0x7F { out += "\\u{\(String(u.value, radix: 16))}" } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}
