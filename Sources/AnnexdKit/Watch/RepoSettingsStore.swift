import Foundation
import Shared
import Synchronization

/// Each repository's settings (repo.set): only the values set through repo.set are kept, in
/// the state directory (`repo-settings.json`, by repository UUID); the others follow the
/// repository's git config (WatchGitConfig) or annexd's defaults (off).
final class RepoSettingsStore: Sendable {
    struct Overrides: Sendable, Equatable {
        var watch: Bool?
        var syncContent: Bool?
    }

    private let path: String
    private let table: Mutex<[String: Overrides]>

    init(path: String) {
        self.path = path
        var loaded: [String: Overrides] = [:]
        if let object = FileManager.default.contents(atPath: path).flatMap({ try? JSONValue(parsing: Array($0)) })?.objectValue {
            for (uuid, value) in object {
                loaded[uuid] = Overrides(watch: value["watch"]?.boolValue, syncContent: value["sync_content"]?.boolValue)
            }
        }
        table = Mutex(loaded)
    }

    func overrides(_ uuid: String) -> Overrides { table.withLock { $0[uuid] ?? Overrides() } }

    /// The effective settings from the overrides and the repository's git config (no remotes listed).
    static func effective(_ o: Overrides, git: WatchGitConfig) -> RepoSettings {
        var set: [String] = []
        if o.watch != nil { set.append("watch") }
        if o.syncContent != nil { set.append("sync_content") }
        return RepoSettings(watch: o.watch ?? git.autosync ?? false, syncContent: o.syncContent ?? git.syncContent ?? false, set: set)
    }

    /// repo.set: applies the changes and saves them; the overrides now in force.
    func update(_ uuid: String, watch: RepoSettingChange, syncContent: RepoSettingChange) throws -> Overrides {
        try table.withLock { t in
            var o = t[uuid] ?? Overrides()
            Self.apply(watch, to: &o.watch)
            Self.apply(syncContent, to: &o.syncContent)
            var next = t
            next[uuid] = o == Overrides() ? nil : o
            try save(next)
            t = next
            return o
        }
    }

    /// A repository removed from annexd: its settings go too.
    func forget(_ uuid: String) {
        table.withLock { t in
            guard t[uuid] != nil else { return }
            var next = t
            next[uuid] = nil
            if (try? save(next)) != nil { t = next }
        }
    }

    private static func apply(_ change: RepoSettingChange, to value: inout Bool?) {
        switch change {
        case .unchanged: break
        case .reset: value = nil
        case .set(let b): value = b
        }
    }

    private func save(_ t: [String: Overrides]) throws {
        var object = JSONObject()
        for (uuid, o) in t.sorted(by: { $0.key < $1.key }) {
            object[uuid] = .object(JSONObject(["watch": o.watch?.json, "sync_content": o.syncContent?.json]))
        }
        try StateDirectory.writeAtomically(path, JSONValue.object(object).serializedBytes(), mode: 0o600)
    }
}

/// What each watched remote last reported (ChangeMemory), kept in the state directory
/// (`watch-memory.json`) so that a restart of annexd, like a reconnect, syncs only on news.
final class ChangeMemoryStore: Sendable {
    private let path: String
    private let table: Mutex<[String: Set<String>]>

    init(path: String) {
        self.path = path
        var loaded: [String: Set<String>] = [:]
        if let object = FileManager.default.contents(atPath: path).flatMap({ try? JSONValue(parsing: Array($0)) })?.objectValue {
            for (key, value) in object {
                loaded[key] = Set((value.arrayValue ?? []).compactMap(\.stringValue))
            }
        }
        table = Mutex(loaded)
    }

    static func key(repo: String, remote: String) -> String { repo + " " + remote }

    func memory(_ key: String) -> ChangeMemory { ChangeMemory(seen: table.withLock { $0[key] }) }

    /// Saves a remote's memory (a failed write is logged by the caller; the memory stays in force).
    func remember(_ key: String, _ memory: ChangeMemory) throws {
        try table.withLock { t in
            guard t[key] != memory.seen else { return }
            t[key] = memory.seen
            var object = JSONObject()
            for (k, v) in t.sorted(by: { $0.key < $1.key }) { object[k] = .array(v.sorted().map(JSONValue.string)) }
            try StateDirectory.writeAtomically(path, JSONValue.object(object).serializedBytes(), mode: 0o600)
        }
    }

    /// A repository removed from annexd: what its remotes reported goes too.
    func forget(repo: String) {
        table.withLock { t in t = t.filter { !$0.key.hasPrefix(repo + " ") } }
    }
}
