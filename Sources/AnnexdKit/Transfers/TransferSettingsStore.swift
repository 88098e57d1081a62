import Foundation
import Shared
import Synchronization

/// The transfer settings (settings.get/set), kept in the state directory, and the bandwidth
/// limiters they configure: one per direction over everything, one per direction per peer.
/// Changes apply to running transfers at once (the limiters are shared, their rates change).
final class TransferSettingsStore: Sendable {
    private let path: String
    private let current: Mutex<TransferSettings>
    private let download = RateLimiter(), upload = RateLimiter()
    private let perPeer = Mutex<[String: (down: RateLimiter, up: RateLimiter)]>([:])

    init(path: String) {
        self.path = path
        let saved = FileManager.default.contents(atPath: path)
            .flatMap { try? JSONValue(parsing: Array($0)) }
            .flatMap { try? TransferSettings(json: $0) }
        current = Mutex(saved ?? TransferSettings())
        apply(saved ?? TransferSettings())
    }

    var settings: TransferSettings { current.withLock { $0 } }

    func update(_ change: (TransferSettings) throws -> TransferSettings) throws -> TransferSettings {
        let new = try current.withLock { s -> TransferSettings in
            s = try change(s)
            return s
        }
        apply(new)
        try StateDirectory.writeAtomically(path, new.json.serializedBytes(), mode: 0o600)
        return new
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

    var limits: TransferQueue.Limits {
        let s = settings
        var l = TransferQueue.Limits()
        l.jobs = s.jobs
        l.perPeer = s.jobsPerPeer
        l.retries = s.retries
        l.retryDelay = s.retryDelay
        return l
    }

    var stallSeconds: Double { settings.stallSeconds }

    /// The limiters a transfer with `peer` in `direction` draws from.
    func limiters(for peer: String, direction: TransferDirection) -> [RateLimiter] {
        let l = perPeer.withLock { table -> (down: RateLimiter, up: RateLimiter) in
            if let l = table[peer] { return l }
            let made = (RateLimiter(), RateLimiter())
            table[peer] = made
            return made
        }
        return direction == .get ? [download, l.down] : [upload, l.up]
    }
}
