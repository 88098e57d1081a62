/// git-annex's own sync settings in one repository's git config, which are annexd's defaults
/// where repo.set has not set a value: `annex.autosync` (watch), `annex.synccontent`
/// (sync_content), and per remote `remote.<name>.annex-sync` (false: not synced, so not
/// watched) and `remote.<name>.annex-ignore` (true: left alone).
struct WatchGitConfig: Sendable, Equatable {
    var autosync: Bool?
    var syncContent: Bool?
    /// remote.<name>.annex-sync, by remote name.
    var remoteSync: [String: Bool] = [:]
    /// remote.<name>.annex-ignore, by remote name.
    var remoteIgnore: [String: Bool] = [:]

    /// The `git config --get-regexp` pattern that lists every setting read here.
    static let pattern = "^(annex\\.(autosync|synccontent)|remote\\..*\\.annex-(sync|ignore))$"

    init() {}

    /// The repository's settings, as git config lists them now.
    static func read(_ repoPath: String) -> WatchGitConfig {
        WatchGitConfig(listing: (try? Command.output(["git", "config", "--get-regexp", pattern], cwd: repoPath)) ?? "")
    }

    /// From `git config --get-regexp` output ("name value" lines; a name alone is true, as in git).
    init(listing: String) {
        for line in listing.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            let name = String(parts[0]).lowercased(), value = parts.count > 1 ? String(parts[1]) : "true"
            guard let b = Self.bool(value) else { continue }  // git-annex ignores what git would refuse
            switch name {
            case "annex.autosync": autosync = b
            case "annex.synccontent": syncContent = b
            default:
                guard name.hasPrefix("remote.") else { continue }
                if name.hasSuffix(".annex-sync") {
                    remoteSync[Self.remote(name, suffix: ".annex-sync")] = b
                } else if name.hasSuffix(".annex-ignore") {
                    remoteIgnore[Self.remote(name, suffix: ".annex-ignore")] = b
                }
            }
        }
    }

    /// Why the remote named `name` is not watched, or nil when it is.
    func skipReason(remote name: String) -> String? {
        if remoteIgnore[name.lowercased()] == true { return "annex-ignore" }
        if remoteSync[name.lowercased()] == false { return "annex-sync=false" }
        return nil
    }

    private static func remote(_ key: String, suffix: String) -> String {
        String(key.dropFirst("remote.".count).dropLast(suffix.count))
    }

    /// git's boolean values.
    static func bool(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "yes", "on", "1", "": true
        case "false", "no", "off", "0": false
        default: nil
        }
    }
}
