#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Shared

/// What the transfer engine asks git-annex, through its own plumbing: which keys files are,
/// where keys are (the location log), and populating unlocked files.
enum AnnexQueries {
    struct Annexed: Equatable, Sendable {
        var file: String?
        var key: AnnexKey
        var size: Int64?
    }

    struct QueryError: Error, CustomStringConvertible {
        let code: String
        let description: String
    }

    /// The annexed files under `paths` (relative to the repository, or absolute inside it) and
    /// their keys, present or not (`git annex find --include=* --json`).
    static func resolve(paths: [String], in annex: AnnexRepo) throws -> [Annexed] {
        let relative = try paths.map { try relativePath($0, in: annex) }
        let (found, stderr, _) = try find(["--include=*", "--"] + relative, in: annex)
        if found.isEmpty {
            let why = stderr.split(separator: "\n").first.map(String.init) ?? ""
            throw QueryError(code: "not_annexed", description: "no annexed files in \(paths.joined(separator: ", "))" + (why.isEmpty ? "" : " (git annex: \(why))"))
        }
        return found
    }

    /// The annexed files of the current branch that `git annex find OPTIONS --json` matches,
    /// what it said on stderr, and how it exited.
    static func find(_ options: [String], in annex: AnnexRepo) throws -> (found: [Annexed], stderr: String, status: Int32) {
        let r = try plumbing(["git", "annex", "find", "--json"] + options, in: annex)
        var found: [Annexed] = []
        for line in r.stdout.split(separator: "\n") {
            guard let o = try? JSONValue(parsing: Array(line.utf8)).objectValue,
                  let keyText = o["key"]?.stringValue, let key = try? AnnexKey(parsing: keyText) else { continue }
            let size = o["bytesize"]?.stringValue.flatMap { Int64($0) }
            found.append(Annexed(file: o["file"]?.stringValue, key: key, size: size ?? key.size))
        }
        return (found, r.stderr, r.status)
    }

    /// Runs a git-annex query within `Command.plumbingTimeout`; a git-annex that hangs is
    /// killed and reported as annex_timeout.
    private static func plumbing(_ args: [String], in annex: AnnexRepo, stdin: Data? = nil) throws -> Command.Output {
        do {
            return try Command.run(args, cwd: annex.path, stdin: stdin, timeout: Command.plumbingTimeout)
        } catch let e as Command.TimedOut {
            throw QueryError(code: "annex_timeout", description: "git-annex did not answer in \(annex.path): \(e)")
        }
    }

    /// `path` relative to the repository's top, refusing paths outside it.
    static func relativePath(_ path: String, in annex: AnnexRepo) throws -> String {
        guard path.hasPrefix("/") else {
            if path.split(separator: "/").contains("..") {
                throw QueryError(code: "invalid_path", description: "\(path): give paths inside the repository, without ..")
            }
            return path
        }
        let top = annex.path.hasSuffix("/") ? annex.path : annex.path + "/"
        if path == annex.path { return "." }
        guard path.hasPrefix(top) else {
            throw QueryError(code: "invalid_path", description: "\(path) is not inside the repository \(annex.path)")
        }
        return String(path.dropFirst(top.count))
    }

    /// For each key, the UUIDs of the repositories the location log says have it
    /// (`git annex whereis --batch-keys --json`).
    static func locations(of keys: [AnnexKey], in annex: AnnexRepo) throws -> [String: [String]] {
        guard !keys.isEmpty else { return [:] }
        let input = keys.map(\.serialized).joined(separator: "\n") + "\n"
        let r = try plumbing(["git", "annex", "whereis", "--batch-keys", "--json"], in: annex, stdin: Data(input.utf8))
        var out: [String: [String]] = [:]
        for line in r.stdout.split(separator: "\n") {
            guard let o = try? JSONValue(parsing: Array(line.utf8)).objectValue, let key = o["key"]?.stringValue else { continue }
            let copies = (o["whereis"]?.arrayValue ?? []).compactMap { $0.objectValue?["uuid"]?.stringValue }
            out[key] = copies
        }
        return out
    }

    /// True when `file` (relative to the repository) is an unlocked file whose work-tree copy is
    /// still the pointer to `key` (`/annex/objects/KEY`), so a get must populate it.
    static func isUnpopulatedPointer(_ file: String, key: AnnexKey, in annex: AnnexRepo) -> Bool {
        guard !annex.isBare else { return false }
        let path = annex.path + "/" + file
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size < 1024,
              let head = FileManager.default.contents(atPath: path) else { return false }
        let text = String(decoding: head, as: UTF8.self).trimmingCharacters(in: .newlines)
        return text == "/annex/objects/" + key.serialized
    }

    /// Populates an unlocked file with its content, now present, as `git annex get` does: a copy
    /// of the object (keeping the file's mode) replaces the pointer atomically, then git's index
    /// is refreshed (git-annex's clean filter sees the same key, so only stat data changes).
    /// (`git annex fix` and `smudge --update` do not do it right after a pull, before git-annex
    /// has caught up with the index.)
    static func populate(_ file: String, key: AnnexKey, object: String, in annex: AnnexRepo) throws {
        let path = annex.path + "/" + file
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        let tmp = Posix.dirname(path) + "/.annexd-populate-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try FileManager.default.copyItem(atPath: object, toPath: tmp)
            chmod(tmp, st.st_mode & 0o7777)
            // Still the pointer (the user may have written to it meanwhile)?
            guard isUnpopulatedPointer(file, key: key, in: annex) else { unlink(tmp); return }
            guard rename(tmp, path) == 0 else { throw SystemError("rename into", path: path) }
        } catch {
            unlink(tmp)
            throw QueryError(code: "io_error", description: "could not populate the unlocked file \(file): \(error)")
        }
        _ = try? Command.run(["git", "update-index", "-q", "--refresh", "--", file], cwd: annex.path)
    }
}
