import ArgumentParser
import Foundation
import Shared

extension SyncDirection: ExpressibleByArgument {}

struct Sync: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sync the repository's branches with its tor-annex remotes (as git annex sync --no-content).",
        discussion: """
        Pulls from each remote (git annex sync --no-push: git-annex fetches through annexd's tor
        and merges), then pushes BRANCH, synced/BRANCH and synced/git-annex. Without PEER, every tor-annex remote not
        set annex-ignore or annex-sync=false. Exits 0 when every remote synced; otherwise 1,
        with why for each. With --content, then queues the gets and puts that preferred content
        asks for and drops (safely) what it does not want; --plan shows those, and why, and
        moves nothing.
        """)
    @OptionGroup var common: CommonOptions
    @Option(help: "The repository (default: the one around the current directory).") var repo: String?
    @Option(help: "pull (fetch and merge), push, or both.") var direction: SyncDirection = .both
    @Flag(help: "Also transfer wanted content, and drop unwanted content safely.") var content = false
    @Flag(help: "Only show what a content sync would get, put and drop, and why (sync.plan); nothing moves.") var plan = false
    @Argument(help: "Remotes (names or UUIDs) to sync with.") var peers: [String] = []

    func run() throws {
        try common.run {
            if plan {
                let params = SyncPlanMethod.Params(repo: try RepoOption.resolve(repo), peers: peers.isEmpty ? nil : peers)
                let r = try common.needing("sync --plan") { try common.client().call(SyncPlanMethod.self, params) }
                if common.json { return common.printJSON(r.json) }
                return SyncRendering.planLines(r).forEach { print($0) }
            }
            let params = SyncRun.Params(repo: try RepoOption.resolve(repo), peers: peers.isEmpty ? nil : peers,
                                        content: content ? true : nil, direction: direction)
            let r = try common.needing("sync") { try common.client().call(SyncRun.self, params) }
            if common.json { common.printJSON(r.json) } else {
                for line in SyncRendering.lines(r, direction: direction) { print(line) }
            }
            if !SyncRendering.succeeded(r) { throw ExitCode(1) }
        }
    }
}
