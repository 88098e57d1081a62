import Foundation
import Shared
import Synchronization

/// What applies to one transfer: settings.set's values, else the repository's git config (the
/// remote's own first), else annexd's defaults.
struct TransferPolicy: Sendable {
    var retries: Int
    var retryDelay: Double
    var stall: TransferGitConfig.Stall
}

/// The transfer settings (settings.get/set) and the bandwidth limiters they configure: one per
/// direction over everything, one per direction per peer. Only the members set through
/// settings.set are kept in the state directory; the others follow git config (global for the
/// daemon-wide values, each repository's own for its transfers) or annexd's defaults. Changes
/// apply to running transfers at once (the limiters are shared, their rates change).
final class TransferSettingsStore: Sendable {
    private struct State {
        /// The members set through settings.set, as JSON (`peers`: the merged list).
        var overrides: JSONObject
        /// git config outside any repository (global, system): the daemon-wide defaults.
        var global: TransferGitConfig
        var effective: TransferSettings
    }
    private let path: String
    private let state: Mutex<State>
    private let download = RateLimiter(), upload = RateLimiter()
    private let perPeer = Mutex<[String: (down: RateLimiter, up: RateLimiter)]>([:])

    init(path: String, global: TransferGitConfig) {
        self.path = path
        var overrides = FileManager.default.contents(atPath: path)
            .flatMap { try? JSONValue(parsing: Array($0)) }?.objectValue ?? [:]
        // A file edited by hand that no longer reads: annexd's and git config's defaults.
        let effective: TransferSettings
        if let e = try? Self.effective(overrides, global) {
            effective = e
        } else {
            overrides = [:]
            effective = (try? Self.effective([:], global)) ?? TransferSettings()
        }
        state = Mutex(State(overrides: overrides, global: global, effective: effective))
        apply(effective)
    }

    var settings: TransferSettings { state.withLock { $0.effective } }

    /// settings.set: the members given change (null: back to the default); returns them all.
    func update(_ params: SettingsSet.Params) throws -> TransferSettings {
        let new = try state.withLock { s -> TransferSettings in
            var overrides = s.overrides
            let merged = try params.applied(to: s.effective)
            for (name, value) in params.json.objectValue ?? [:] {
                if value.isNull { overrides[name] = nil; continue }
                overrides[name] = name == "peers" ? merged.peers.json : value
            }
            if overrides["peers"]?.arrayValue?.isEmpty == true { overrides["peers"] = nil }
            let effective = try Self.effective(overrides, s.global)
            try StateDirectory.save(path, JSONValue.object(overrides).serializedBytes(), mode: 0o600)
            s.overrides = overrides
            s.effective = effective
            return effective
        }
        apply(new)
        return new
    }

    /// git config outside repositories changed (read again on settings.get and when transfers are queued).
    func refresh(global: TransferGitConfig) {
        let new = state.withLock { s -> TransferSettings? in
            guard s.global != global, let e = try? Self.effective(s.overrides, global) else { return nil }
            s.global = global
            s.effective = e
            return e
        }
        if let new { apply(new) }
    }

    /// annexd's defaults, then git config's, then settings.set's.
    private static func effective(_ overrides: JSONObject, _ git: TransferGitConfig) throws -> TransferSettings {
        var base = TransferSettings()
        if let j = git.jobs { base.jobs = min(64, j) }
        if let n = git.repo.retries { base.retries = min(1000, n) }
        if let d = git.repo.retryDelay { base.retryDelay = d }
        switch git.repo.stall[.get] {
        case .never: base.stallSeconds = 0
        case .below(let bytes, let seconds): (base.stallBytes, base.stallSeconds) = (bytes, seconds)
        case nil: break
        }
        var s = try TransferSettings(json: .object(overrides), path: "settings", over: base)
        if overrides["jobs_per_peer"] == nil { s.jobsPerPeer = s.jobs }
        s.set = overrides.keys.sorted()
        return s
    }

    private func apply(_ s: TransferSettings) {
        download.bytesPerSecond = s.downloadLimit
        upload.bytesPerSecond = s.uploadLimit
        perPeer.withLock { table in
            for (uuid, l) in table where !s.peers.contains(where: { $0.uuid == uuid }) {
                l.down.bytesPerSecond = 0
                l.up.bytesPerSecond = 0
            }
            for p in s.peers {
                let l = table[p.uuid] ?? (RateLimiter(), RateLimiter())
                l.down.bytesPerSecond = p.downloadLimit
                l.up.bytesPerSecond = p.uploadLimit
                table[p.uuid] = l
            }
        }
    }

    /// The queue's limits; `repos`: each repository's git config (its annex.jobs caps it, unless jobs was set).
    func limits(repos: [String: TransferGitConfig]) -> TransferQueue.Limits {
        let (s, jobsSet) = state.withLock { ($0.effective, $0.overrides["jobs"] != nil) }
        var l = TransferQueue.Limits()
        l.jobs = s.jobs
        l.perPeer = s.jobsPerPeer
        l.smallPerPeer = s.smallJobs
        l.retries = s.retries
        l.retryDelay = s.retryDelay
        if !jobsSet { l.repoJobs = repos.compactMapValues(\.jobs) }
        return l
    }

    /// What applies to a transfer with the repository's remote named `remote`.
    func policy(git: TransferGitConfig, remote: String?, direction: TransferDirection) -> TransferPolicy {
        let (s, overrides) = state.withLock { ($0.effective, $0.overrides) }
        let fromGit = git.values(remote: remote)
        let stall: TransferGitConfig.Stall
        if overrides["stall_seconds"] != nil || overrides["stall_bytes"] != nil || fromGit.stall[direction] == nil {
            stall = s.stallSeconds > 0 ? .below(bytes: s.stallBytes, seconds: s.stallSeconds) : .never
        } else {
            stall = fromGit.stall[direction]!
        }
        return TransferPolicy(retries: overrides["retries"] == nil ? min(1000, fromGit.retries ?? s.retries) : s.retries,
                              retryDelay: overrides["retry_delay"] == nil ? fromGit.retryDelay ?? s.retryDelay : s.retryDelay,
                              stall: stall)
    }

    /// Every limiter a transfer with `peer` (the remote named `remote`) draws from: all transfers
    /// that way, the peer's, and its own (annex.bwlimit / remote.<name>.annex-bwlimit, per
    /// transfer as git-annex applies it, unless the peer has a limit of its own that way).
    func limiters(git: TransferGitConfig, remote: String?, peer: String, direction: TransferDirection) -> [RateLimiter] {
        let s = settings
        var limiters = shared(for: peer, direction: direction)
        let peerLimit = s.peers.first { $0.uuid == peer }.map { direction == .get ? $0.downloadLimit : $0.uploadLimit } ?? 0
        if peerLimit == 0, let own = git.values(remote: remote).bandwidth[direction], own > 0 {
            limiters.append(RateLimiter(bytesPerSecond: own))
        }
        return limiters
    }

    /// The shared limiters a transfer with `peer` in `direction` draws from.
    private func shared(for peer: String, direction: TransferDirection) -> [RateLimiter] {
        let l = perPeer.withLock { table -> (down: RateLimiter, up: RateLimiter) in
            if let l = table[peer] { return l }
            let made = (RateLimiter(), RateLimiter())
            table[peer] = made
            return made
        }
        return direction == .get ? [download, l.down] : [upload, l.up]
    }
}
