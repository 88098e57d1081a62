import Foundation
import Shared

/// What a drop decision needs from a repository, read through git-annex's own plumbing:
/// which keys the paths name and where the location log says they are (`git annex whereis
/// --json`), which repositories are trusted (`git annex info --fast --json`), and numcopies /
/// mincopies as git-annex resolves them for a file (`annex.numcopies` / `annex.mincopies`
/// gitattributes, else `git annex numcopies` / `git annex mincopies`, else the deprecated
/// git config annex.numcopies, else 1). Blocking: runs git-annex.
struct DropInputs {
    /// One key to drop, with its log entries.
    struct Item {
        var key: String
        var file: String?
        /// Repositories the log lists (not untrusted, not dead).
        var locations: [(uuid: String, description: String)]
        /// Untrusted repositories the log lists.
        var untrusted: [(uuid: String, description: String)]
    }

    let repoPath: String
    /// Trusted repository UUIDs.
    let trusted: Set<String>
    let globalNumCopies: Int?
    let globalMinCopies: Int?
    let deprecatedNumCopies: Int?

    struct Failure: Error, CustomStringConvertible { let description: String }

    init(repoPath: String) throws {
        self.repoPath = repoPath
        let info = try Self.json(["git", "annex", "info", "--fast", "--json"], cwd: repoPath).first ?? .null
        trusted = Set((info["trusted repositories"]?.arrayValue ?? []).compactMap { $0["uuid"]?.stringValue })
        globalNumCopies = Self.number(try? Command.output(["git", "annex", "numcopies"], cwd: repoPath))
        globalMinCopies = Self.number(try? Command.output(["git", "annex", "mincopies"], cwd: repoPath))
        deprecatedNumCopies = Self.number(try? Command.output(["git", "config", "--get", "annex.numcopies"], cwd: repoPath))
    }

    /// The annexed files under `path` (one, or a directory's); empty when none is annexed.
    func items(path: String) -> [Item] {
        let records = (try? Self.json(["git", "annex", "whereis", "--json", "--", path], cwd: repoPath)) ?? []
        return records.compactMap(Self.item)
    }

    /// `key` with its log entries (none when no repository is known to have it).
    func item(key: String) throws -> Item {
        let records = try Self.json(["git", "annex", "whereis", "--json", "--key", key], cwd: repoPath)
        return records.compactMap(Self.item).first ?? Item(key: key, file: nil, locations: [], untrusted: [])
    }

    /// numcopies and mincopies for `file` (nil: a key asked for directly gets the global values).
    func copies(for file: String?) -> (numCopies: Int, minCopies: Int) {
        var attrNum: Int?, attrMin: Int?
        if let file, let out = try? Command.output(["git", "check-attr", "annex.numcopies", "annex.mincopies", "--", file], cwd: repoPath) {
            for line in out.split(separator: "\n") {
                // "<file>: annex.numcopies: 2"; the file name may itself hold ": ".
                let parts = line.components(separatedBy: ": ")
                guard parts.count >= 3, let value = Int(parts[parts.count - 1]) else { continue }
                if parts[parts.count - 2] == "annex.numcopies" { attrNum = value }
                if parts[parts.count - 2] == "annex.mincopies" { attrMin = value }
            }
        }
        return (attrNum ?? globalNumCopies ?? deprecatedNumCopies ?? 1, attrMin ?? globalMinCopies ?? 1)
    }

    func trust(_ uuid: String, untrusted: Bool) -> DropSafety.Trust {
        untrusted ? .untrusted : trusted.contains(uuid) ? .trusted : .semitrusted
    }

    // MARK: Parsing git-annex's output

    private static func item(_ record: JSONValue) -> Item? {
        guard let key = record["key"]?.stringValue else { return nil }
        func list(_ field: String) -> [(uuid: String, description: String)] {
            (record[field]?.arrayValue ?? []).compactMap { entry in
                entry["uuid"]?.stringValue.map { ($0, entry["description"]?.stringValue ?? "") }
            }
        }
        return Item(key: key, file: record["file"]?.stringValue, locations: list("whereis"), untrusted: list("untrusted"))
    }

    /// `git annex numcopies` prints the number, or "global numcopies is not set".
    static func number(_ output: String?) -> Int? {
        output.flatMap { Int($0.split(separator: "\n").first.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "") }
    }

    /// One JSON object per line of a `--json` command's output.
    private static func json(_ args: [String], cwd: String) throws -> [JSONValue] {
        let r = try Command.run(args, cwd: cwd)
        let records = r.stdout.split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
        if records.isEmpty && r.status != 0 {
            throw Failure(description: "\(args.joined(separator: " ")) failed: \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return records
    }
}
