#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import Shared

// Transfers the daemon owns: get, copy --to, drop; list and follow them; cancel, pause,
// resume and retry them.
//
// Paths are given as with git-annex: relative to the current directory (inside the
// repository), or absolute. annex-cli sends them relative to the repository's top (`.` for
// the top itself). With --repo and a current directory outside that repository, relative
// paths are relative to the repository's top.

/// The repository and the paths to send for PATH… arguments.
struct TransferTarget {
    let repo: String
    let paths: [String]

    init(repo: String?, paths: [String]) throws {
        self.repo = try RepoOption.resolve(repo)
        let top = Self.physical(self.repo)
        let cwd = FileManager.default.currentDirectoryPath
        self.paths = try paths.map { p in
            do { return try RepoRelativePath.resolve(Self.physicalParent(p), cwd: cwd, top: top) } catch let e as RepoRelativePath.OutsideRepository {
                throw ValidationError(e.description)
            }
        }
    }

    /// The path with symbolic links resolved (as is when it does not exist).
    static func physical(_ path: String) -> String {
        guard let r = realpath(path, nil) else { return path }
        defer { free(r) }
        return String(cString: r)
    }

    /// An absolute path with its directory's links resolved (the file itself is often a link,
    /// to the annex, and stays); a relative path as is.
    static func physicalParent(_ path: String) -> String {
        guard path.hasPrefix("/") else { return path }
        let url = URL(fileURLWithPath: path)
        let name = url.lastPathComponent
        if name == "." || name == ".." || name == "/" { return physical(path) }
        return physical(url.deletingLastPathComponent().path) + "/" + name
    }
}

/// What get and copy share: the paths, --repo, --no-wait, and waiting for the transfers.
struct TransferStartOptions: ParsableArguments {
    @Option(help: "The repository (default: the one around the current directory).") var repo: String?
    @Flag(help: "Return once the transfers are queued, without waiting for them.") var noWait = false
    @Argument(help: "Annexed files or directories (relative to the current directory, or absolute).") var paths: [String]

    static let discussion = "Paths are relative to the current directory, as with git-annex (from outside the repository, "
        + "with --repo: relative to its top). On a terminal, a progress line per file is redrawn in place; otherwise one line "
        + "per change; --json prints each transfer event as a JSON line, then a summary line. annexd owns the transfers: "
        + "interrupting annex-cli does not stop them (`annex-cli cancel` does)."

    func validate() throws {
        if paths.isEmpty { throw ValidationError("give at least one path") }
    }

    /// transfer.start, then (unless --no-wait) follows the transfers until they settle;
    /// exit status 1 unless every one is done.
    func start(_ common: CommonOptions, direction: TransferDirection, peer: String?) throws {
        try common.run {
            let target = try TransferTarget(repo: repo, paths: paths)
            let client = try common.client()
            var early: [RPCNotification] = []
            if !noWait { try TransferWaiter.subscribe(client, common: common) { early.append($0) } }
            let params = TransferStart.Params(repo: target.repo, direction: direction, paths: target.paths, peer: peer)
            let result = try common.needing("transfers") { try client.call(TransferStart.self, params) { early.append($0) } }
            if noWait {
                if common.json { return common.printJSON(result.json) }
                let now = TransferOutput.now
                return print(result.transfers.isEmpty ? "nothing to transfer"
                             : result.transfers.map { "\(TransferRendering.line($0, now: now))  [\($0.id)]" }.joined(separator: "\n"))
            }
            var waiter = TransferWaiter(client: client, watch: TransferWatch(result.transfers), output: TransferOutput(json: common.json))
            let outcome = try waiter.wait(early: early, common: common)
            if !outcome.succeeded { throw ExitCode(outcome.exitStatus) }
        }
    }
}

struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Get the content of annexed files from peers, and wait for it.",
        discussion: "annexd fetches each file from whichever peer has it (or only from --from). Exits 0 when every file arrived; otherwise 1, with each failure and its reason. "
            + TransferStartOptions.discussion)
    @OptionGroup var common: CommonOptions
    @Option(help: "Only from this peer (remote name or UUID).") var from: String?
    @OptionGroup var options: TransferStartOptions

    func run() throws { try options.start(common, direction: .get, peer: from) }
}

struct Copy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the content of annexed files to a peer, and wait for it.",
        discussion: "Exits 0 when the peer has every file; otherwise 1, with each failure and its reason. " + TransferStartOptions.discussion)
    @OptionGroup var common: CommonOptions
    @Option(help: "The peer to copy to (remote name or UUID).") var to: String
    @OptionGroup var options: TransferStartOptions

    func run() throws { try options.start(common, direction: .put, peer: to) }
}

struct Drop: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drop the content of annexed files here (or from a peer), when enough copies remain elsewhere.",
        discussion: "As `git annex drop`: only when numcopies (and mincopies) other copies are verified. Exits 0 when every file's content is gone from there; otherwise 1, with why for each.")
    @OptionGroup var common: CommonOptions
    @Option(help: "The repository (default: the one around the current directory).") var repo: String?
    @Option(help: "Drop from this peer (remote name or UUID) instead of from here.") var from: String?
    @Argument(help: "Annexed files or directories (relative to the current directory, or absolute).") var paths: [String]

    func validate() throws {
        if paths.isEmpty { throw ValidationError("give at least one path") }
    }

    func run() throws {
        try common.run {
            let target = try TransferTarget(repo: repo, paths: paths)
            let params = ContentDrop.Params(repo: target.repo, paths: target.paths, from: from)
            let r = try common.needing("dropping content") { try common.client().call(ContentDrop.self, params) }
            if common.json { common.printJSON(r.json) } else {
                for d in r.results { print(TransferRendering.dropLine(d, from: from)) }
            }
            if !TransferRendering.dropSucceeded(r.results) { throw ExitCode(1) }
        }
    }
}

struct Transfers: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List transfers (of every repository, or of --repo's), and with --follow keep showing them.")
    @OptionGroup var common: CommonOptions
    @Option(help: "Only this repository's transfers.") var repo: String?
    @Flag(help: "Keep showing transfers as they change, until interrupted.") var follow = false

    func run() throws {
        try common.run {
            let client = try common.client()
            let repoPath = try repo.map { try RepoOption.resolve($0) }
            // Events name the repository by the path the daemon knows it by.
            var adoption = TransferWatch.Adoption.all
            if follow, let repoPath { adoption = .repo(try client.call(RepoInfoMethod.self, .init(repo: repoPath)).path) }
            var early: [RPCNotification] = []
            if follow { try TransferWaiter.subscribe(client, common: common) { early.append($0) } }
            let list = try common.needing("transfers") { try client.call(TransferList.self, .init(repo: repoPath)) { early.append($0) } }
            if !follow {
                if common.json { return common.printJSON(list.json) }
                if list.transfers.isEmpty { return print("no transfers") }
                print(table(TransferRendering.tableHeader, list.transfers.map(TransferRendering.row)))
                if list.total > list.transfers.count { print("(\(list.transfers.count) of \(list.total))") }
                return
            }
            if common.json { common.printJSON(list.json) }
            let watch = TransferWatch(list.transfers, adopting: adoption)
            var waiter = TransferWaiter(client: client, watch: watch, output: TransferOutput(json: common.json))
            _ = try waiter.wait(early: early, common: common, forever: true)
        }
    }
}

/// Which transfers cancel, pause, resume and retry act on.
struct TransferSelectionOptions: ParsableArguments {
    @Argument(help: "Transfer ids (see `annex-cli transfers`).") var ids: [String] = []
    @Flag(help: "Every transfer this applies to (only --repo's when given).") var all = false
    @Option(help: "With --all: only this repository's transfers.") var repo: String?

    func validate() throws {
        if ids.isEmpty && !all { throw ValidationError("give transfer ids (see `annex-cli transfers`), or --all") }
        if !ids.isEmpty && all { throw ValidationError("give transfer ids or --all, not both") }
        if repo != nil && !all { throw ValidationError("--repo goes with --all") }
    }

    /// Calls `M` on the selection and shows what it changed.
    func act<M: RPCMethod>(_ method: M.Type, _ common: CommonOptions, done verb: String) throws
        where M.Params == TransferSelection, M.Result == TransferListResult {
        try common.run {
            let selection = TransferSelection(ids: all ? nil : ids, all: all, repo: try repo.map { try RepoOption.resolve($0) })
            let r = try common.needing("transfers") { try common.client().call(M.self, selection) }
            if common.json { return common.printJSON(r.json) }
            if r.transfers.isEmpty { return print("no transfer was \(verb)") }
            print("\(verb) \(r.transfers.count) transfer\(r.transfers.count == 1 ? "" : "s"):")
            let now = TransferOutput.now
            for t in r.transfers { print("  \(TransferRendering.line(t, now: now))  [\(t.id)]") }
        }
    }
}

/// cancel, pause, resume and retry: one command each, over their method.
protocol TransferActionMethod: RPCMethod where Params == TransferSelection, Result == TransferListResult {
    static var commandName: String { get }
    static var abstract: String { get }
    /// What happened to the transfers, for the answer: "canceled 2 transfers".
    static var done: String { get }
}

struct TransferAction<Method: TransferActionMethod>: ParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(commandName: Method.commandName, abstract: Method.abstract) }
    @OptionGroup var common: CommonOptions
    @OptionGroup var selection: TransferSelectionOptions
    func run() throws { try selection.act(Method.self, common, done: Method.done) }
}

extension TransferCancel: TransferActionMethod {
    static let commandName = "cancel", done = "canceled"
    static let abstract = "Cancel transfers (a get keeps what it received, so getting again resumes)."
}
extension TransferPause: TransferActionMethod {
    static let commandName = "pause", done = "paused", abstract = "Pause queued or active transfers."
}
extension TransferResume: TransferActionMethod {
    static let commandName = "resume", done = "resumed", abstract = "Resume paused transfers."
}
extension TransferRetry: TransferActionMethod {
    static let commandName = "retry", done = "queued again", abstract = "Retry failed or canceled transfers now."
}
