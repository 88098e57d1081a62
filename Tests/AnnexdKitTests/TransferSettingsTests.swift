import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// git-annex's transfer settings read from git config, and how they meet settings.set's.
@Suite struct TransferSettingsTests {
    typealias Config = TransferGitConfig

    /// A path in a fresh directory (settings files are small; the directory is left in /tmp).
    static func scratchFile() -> String {
        let dir = NSTemporaryDirectory() + "annexd-settings-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir + "/transfer-settings.json"
    }

    @Test func gitAnnexValueSyntax() {
        #expect(Config.size("1MiB") == 1 << 20)
        #expect(Config.size("100kB") == 100_000)
        #expect(Config.size("0.5 GiB") == 1 << 29)
        #expect(Config.size("4096") == 4096)
        #expect(Config.size("2 megabytes") == 2_000_000)
        #expect(Config.size("lots") == nil && Config.size("1XB") == nil && Config.size("") == nil)
        #expect(Config.duration("30s") == 30 && Config.duration("1m30s") == 90 && Config.duration("2h") == 7200)
        #expect(Config.duration("45") == 45)
        #expect(Config.duration("1x") == nil && Config.duration("m") == nil && Config.duration("") == nil)
        #expect(Config.stall("1KB/30s") == .below(bytes: 1000, seconds: 30))
        #expect(Config.stall("0KiB/60s") == .below(bytes: 1, seconds: 60), "0 means no byte at all")
        #expect(Config.stall("false") == .never)
        #expect(Config.stall("true") == .below(bytes: 1, seconds: 60))
        #expect(Config.stall("1KB") == nil && Config.stall("1KB/0s") == nil)
    }

    @Test func aRemotesOwnSettingsWinAndDirectionsNarrow() {
        let c = Config(listing: """
            annex.jobs cpus
            annex.retry 3
            annex.retry-delay 5s
            annex.bwlimit 1MiB
            annex.stalldetection-upload 10KiB/20s
            annex.stalldetection 1KB/30s
            remote.nas.annex-bwlimit-download 2MiB
            remote.nas.annex-retry 7
            remote.nas.annex-stalldetection false
            remote.my.friend.annex-retry 1
            remote.bad.annex-retry many
            """, cpus: 6)
        #expect(c.jobs == 6)
        #expect(c.repo.retries == 3 && c.repo.retryDelay == 5)
        #expect(c.repo.bandwidth == [.get: 1 << 20, .put: 1 << 20])
        #expect(c.repo.stall[.put] == .below(bytes: 10 << 10, seconds: 20), "the -upload form wins whatever its order")
        #expect(c.repo.stall[.get] == .below(bytes: 1000, seconds: 30))
        let nas = c.values(remote: "nas")
        #expect(nas.retries == 7 && nas.retryDelay == 5)
        #expect(nas.bandwidth == [.get: 2 << 20, .put: 1 << 20])
        #expect(nas.stall == [.get: .never, .put: .never])
        #expect(c.values(remote: "my.friend").retries == 1, "remote names may hold dots")
        #expect(c.values(remote: "other") == c.repo && c.values(remote: nil) == c.repo)
        #expect(c.ignored == ["remote.bad.annex-retry=many"])
        #expect(Config(listing: "annex.jobs 0\n", cpus: 2).jobs == nil)
    }

    @Test func settingsSetWinsOverGitConfigAndNullPutsItBack() throws {
        let path = Self.scratchFile()
        let global = Config(listing: "annex.jobs 8\nannex.retry 2\nannex.stalldetection 1MB/1m\n", cpus: 2)
        let store = TransferSettingsStore(path: path, global: global)
        var s = store.settings
        #expect(s.jobs == 8 && s.jobsPerPeer == 8 && s.retries == 2 && s.stallSeconds == 60 && s.stallBytes == 1_000_000)
        #expect(s.set.isEmpty && s.smallJobs == 16 && s.retryDelay == 1)

        s = try store.update(SettingsSet.Params(["jobs": 3, "retries": 9]))
        #expect(s.jobs == 3 && s.jobsPerPeer == 3 && s.retries == 9 && s.set == ["jobs", "retries"])
        // Kept across restarts: only what was set.
        let again = TransferSettingsStore(path: path, global: global)
        #expect(again.settings == s)
        let saved = try JSONValue(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        #expect(saved.objectValue?.keys.sorted() == ["jobs", "retries"])

        s = try again.update(SettingsSet.Params(["jobs": .null]))
        #expect(s.jobs == 8 && s.set == ["retries"], "null: back to git config's annex.jobs")
        // An invalid value changes nothing.
        #expect(throws: RPCError.self) { try again.update(SettingsSet.Params(["retries": -1])) }
        #expect(again.settings == s)
    }

    @Test func aTransfersPolicyTakesTheRepositoryAndRemoteIntoAccount() throws {
        let store = TransferSettingsStore(path: Self.scratchFile(), global: Config())
        let repo = Config(listing: "annex.retry 4\nannex.bwlimit 1MiB\nremote.nas.annex-stalldetection 10KB/5s\nremote.nas.annex-retry-delay 3\n", cpus: 2)
        var p = store.policy(git: repo, remote: "nas", direction: .get)
        var limiters = store.limiters(git: repo, remote: "nas", peer: "u-nas", direction: .get)
        #expect(p.retries == 4 && p.retryDelay == 3 && p.stall == .below(bytes: 10_000, seconds: 5))
        #expect(limiters.count == 3 && limiters.last?.bytesPerSecond == 1 << 20, "annex.bwlimit: a limiter of the transfer's own")
        p = store.policy(git: repo, remote: "laptop", direction: .put)
        #expect(p.stall == .below(bytes: 1, seconds: 60) && p.retryDelay == 1)

        _ = try store.update(SettingsSet.Params(["stall_seconds": 0, "retries": 1,
                                                 "peers": [["uuid": "u-nas", "download_limit": 5000]]]))
        p = store.policy(git: repo, remote: "nas", direction: .get)
        limiters = store.limiters(git: repo, remote: "nas", peer: "u-nas", direction: .get)
        #expect(p.retries == 1 && p.stall == .never, "settings.set wins over git config")
        #expect(limiters.count == 2 && limiters.last?.bytesPerSecond == 5000, "the peer's own limit replaces remote.<name>.annex-bwlimit")

        var limits = store.limits(repos: ["r1": Config(listing: "annex.jobs 1\n", cpus: 2)])
        #expect(limits.repoJobs == ["r1": 1])
        _ = try store.update(SettingsSet.Params(["jobs": 5]))
        limits = store.limits(repos: ["r1": Config(listing: "annex.jobs 1\n", cpus: 2)])
        #expect(limits.repoJobs.isEmpty && limits.jobs == 5, "jobs set through settings.set: no per-repository cap")
    }
}
