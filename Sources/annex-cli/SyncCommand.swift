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
        with why for each.
        """)
    @OptionGroup var common: CommonOptions
    @Option(help: "The repository (default: the one around the current directory).") var repo: String?
    @Option(help: "pull (fetch and merge), push, or both.") var direction: SyncDirection = .both
    @Flag(help: "Also transfer wanted content (not supported yet).") var content = false
    @Argument(help: "Remotes (names or UUIDs) to sync with.") var peers: [String] = []

    func run() throws {
        try common.run {
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
