import Foundation

/// Answers NOTIFYCHANGE: the first request at once with the current refs, then
/// by waiting until a ref changes and naming the changed refs.
final class RefWatcher {
    let repo: AnnexRepo
    private var last: [String: String]?
    let pollInterval: useconds_t = 500_000

    init(repo: AnnexRepo) { self.repo = repo }

    func waitForChange() throws -> [String] {
        guard let previous = last else {
            let now = try refs()
            last = now
            return now.keys.sorted()
        }
        while true {
            let now = try refs()
            let changed = Set(now.keys).union(previous.keys).filter { now[$0] != previous[$0] }
            if !changed.isEmpty {
                last = now
                return changed.sorted()
            }
            usleep(pollInterval)
        }
    }

    private func refs() throws -> [String: String] {
        let out = try Command.output(["git", "for-each-ref", "--format=%(objectname) %(refname)"], cwd: repo.path)
        var map: [String: String] = [:]
        for line in out.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2 { map[String(parts[1])] = String(parts[0]) }
        }
        return map
    }
}
