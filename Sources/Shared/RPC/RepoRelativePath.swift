/// Paths as annex-cli sends them: relative to the repository's top, as git-annex users give
/// them relative to where they stand. Pure path arithmetic (no file system access): the
/// caller passes the physical current directory and repository top.
public enum RepoRelativePath {
    public struct OutsideRepository: Error, Equatable, CustomStringConvertible {
        public let path: String
        public let top: String
        public var description: String { "\(path) is outside the repository \(top)" }
    }

    /// `path` (absolute, or relative to `cwd` when `cwd` is inside `top`, else to `top`)
    /// relative to `top`: `photos/a.jpg`, or `.` for the top itself.
    public static func resolve(_ path: String, cwd: String, top: String) throws -> String {
        let top = normalize(top)
        let cwdInside = contains(top, normalize(cwd))
        let base = cwdInside ? cwd : top
        let full = normalize(path.hasPrefix("/") ? path : base + "/" + path)
        guard contains(top, full) else { throw OutsideRepository(path: path, top: top) }
        if full == top { return "." }
        return String(full.dropFirst(top == "/" ? 1 : top.count + 1))
    }

    /// Whether `path` is `top` or inside it (both normalized).
    static func contains(_ top: String, _ path: String) -> Bool {
        path == top || top == "/" || path.hasPrefix(top + "/")
    }

    /// An absolute path with `.`, `..` and repeated or trailing slashes worked out lexically.
    public static func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..": _ = parts.popLast()
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }
}
