import Foundation
import Shared

/// A git-annex repository on disk: where git-annex keeps things in it, and the
/// settings annexd must honour. Paths follow Annex/Locations.hs.
public struct AnnexRepo: Sendable {
    public let path: String
    public let gitDir: String
    public let isBare: Bool
    public let uuid: String
    /// `annex.verify` (default true): check content against its key before storing it.
    public let verify: Bool

    public struct OpenError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Opens the repository at (or around) `path`.
    public init(path: String) throws {
        guard Posix.isDirectory(path) else {
            throw OpenError(description: "\(path): no such directory")
        }
        // One git for all three answers; --show-toplevel fails (after printing the
        // first two) in a bare repository or from inside .git.
        let r = try Command.run(["git", "rev-parse", "--absolute-git-dir", "--is-bare-repository", "--show-toplevel"], cwd: path)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        guard lines.count >= 2, r.status == 0 || lines.count == 2 else {
            throw OpenError(description: "\(path) is not a git repository")
        }
        gitDir = lines[0]
        isBare = lines[1] == "true"
        if isBare {
            self.path = gitDir
        } else if lines.count >= 3 {
            self.path = lines[2]
        } else {
            let top = try Command.run(["git", "rev-parse", "--show-toplevel"], cwd: path)
            self.path = top.status == 0 ? top.stdout.trimmingCharacters(in: .newlines) : path
        }
        let config = try Command.run(["git", "config", "--get-regexp", "^annex\\.(uuid|verify)$"], cwd: path)
        var values: [String: String] = [:]
        for line in config.stdout.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
        }
        guard let uuid = values["annex.uuid"], !uuid.isEmpty else {
            throw OpenError(description: "\(self.path) is not a git-annex repository (no annex.uuid): run `git annex init` in it first")
        }
        self.uuid = uuid
        verify = !["false", "no", "off", "0"].contains(values["annex.verify"]?.lowercased() ?? "true")
    }

    public var annexDir: String { gitDir + "/annex" }
    public var objectsDir: String { annexDir + "/objects" }
    public var tmpDir: String { annexDir + "/tmp" }

    /// Directory holding a key's object, in this repo's own layout.
    public func keyDirectory(_ key: AnnexKey) -> String {
        keyDirectories(key)[0]
    }

    /// Every place git-annex may have put the object, the repo's own layout first
    /// (a repository converted between bare and non-bare keeps the other).
    public func keyDirectories(_ key: AnnexKey) -> [String] {
        let file = HashDirs.keyFile(key)
        let mixed = "\(objectsDir)/\(HashDirs.mixed(key))/\(file)"
        let lower = "\(objectsDir)/\(HashDirs.lower(key))/\(file)"
        return isBare ? [lower, mixed] : [mixed, lower]
    }

    public func objectPath(inDirectory dir: String, _ key: AnnexKey) -> String {
        dir + "/" + HashDirs.keyFile(key)
    }

    /// The content lock file git-annex (v8+) uses: `<keydir>/<keyfile>.lck`.
    public func lockPath(inDirectory dir: String, _ key: AnnexKey) -> String {
        dir + "/" + HashDirs.keyFile(key) + ".lck"
    }

    /// A partial download: its size is the resume offset.
    public func partialPath(_ key: AnnexKey) -> String {
        tmpDir + "/" + HashDirs.keyFile(key)
    }
}
