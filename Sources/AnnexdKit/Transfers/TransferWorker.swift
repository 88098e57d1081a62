#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Shared
import Synchronization

/// One attempt of one transfer, blocking, on a thread of its own: reach the peer (or reuse an
/// idle connection to it), GET or PUT the key, then record the result through git-annex's
/// plumbing as git-annex would. Everything that can go wrong becomes a `TransferFailure`.
final class RunningTransfer: Sendable {
    let id: String
    let meter: TransferMeter
    /// Why the transfer was stopped from outside (pause, cancel, stall), if it was.
    private let stop = Mutex<TransferFailure?>(nil)
    private let client = Mutex<P2PClient?>(nil)
    /// Where the current DATA started (a resume's offset), and whether it is being verified.
    let stage = Mutex<(offset: Int64, verifying: Bool, inData: Bool)>((0, false, false))
    /// git-annex's record of the transfer (.git/annex/transfer/…), for its byte count.
    let record = Mutex<TransferLog.Active?>(nil)

    init(id: String, meter: TransferMeter) {
        self.id = id
        self.meter = meter
    }

    var stopReason: TransferFailure? { stop.withLock { $0 } }

    /// From the scheduler: ends the attempt now, for `reason`.
    func interrupt(_ reason: TransferFailure) {
        stop.withLock { if $0 == nil { $0 = reason } }
        client.withLock { $0?.interrupt() }
    }

    func attach(_ c: P2PClient?) {
        client.withLock { $0 = c }
        if c != nil, stopReason != nil { c?.interrupt() }
    }
}

/// Idle authenticated connections, per (repository, peer), so queued small files do not pay
/// a tor circuit and AUTH each.
final class ConnectionPool: Sendable {
    private struct Idle { var client: P2PClient; var since: Double }
    private let idle = Mutex<[String: [Idle]]>([:])
    static let maxIdleSeconds: Double = 30

    private static func slot(_ repo: String, _ peer: String) -> String { repo + "/" + peer }

    func take(repo: String, peer: String) -> P2PClient? {
        idle.withLock { $0[Self.slot(repo, peer)]?.popLast()?.client }
    }

    func give(_ client: P2PClient, repo: String, peer: String) {
        client.conn.meter = nil
        client.onStage = nil
        idle.withLock { $0[Self.slot(repo, peer), default: []].append(Idle(client: client, since: RateLimiter.now())) }
    }

    func has(repo: String, peer: String) -> Bool { idle.withLock { !($0[Self.slot(repo, peer)] ?? []).isEmpty } }

    /// Closes connections idle for too long (or all of them).
    func expire(all: Bool = false) {
        let now = RateLimiter.now()
        let old = idle.withLock { table -> [P2PClient] in
            var out: [P2PClient] = []
            for (slot, list) in table {
                let keep = list.filter { !all && now - $0.since < Self.maxIdleSeconds }
                out += list.filter { all || now - $0.since >= Self.maxIdleSeconds }.map(\.client)
                table[slot] = keep.isEmpty ? nil : keep
            }
            return out
        }
        for c in old { c.close() }
    }
}

struct TransferWorker {
    /// The repository's object store (shared with its listener: one location-log process).
    let store: ObjectStore
    var annex: AnnexRepo { store.repo }
    let dialer: PeerDialer
    let socks: (host: String, port: Int)
    let pool: ConnectionPool
    /// The peer as this repository's tor-annex remote.
    let remote: RemoteInfo
    let peer: TransferPeer
    let key: AnnexKey
    let file: String?
    let direction: TransferDirection

    /// Runs the attempt; nil when it succeeded.
    func run(_ running: RunningTransfer) -> TransferFailure? {
        if direction == .get && store.isPresent(key) { return populateIfUnlocked() }
        if direction == .put && !store.isPresent(key) {
            return TransferFailure(code: "not_present", message: "\(describe) is not present in \(annex.path): get it first")
        }
        let record: TransferLog.Active
        do {
            record = try TransferLog(repo: annex).begin(direction == .get ? .download : .upload, remoteUUID: peer.uuid, key: key, file: file)
        } catch TransferLogError.inProgress {
            return TransferFailure(code: "in_progress", message: "git-annex (or another annexd transfer) is already transferring \(describe); this one waits and tries again")
        } catch {
            return TransferFailure(code: "io_error", message: "\(error)")
        }
        running.record.withLock { $0 = record }
        let failure = transfer(running)
        running.record.withLock { $0 = nil }
        if failure == nil || !TransferQueue.retryable.contains(failure!.code) && !TransferService.stopCodes.contains(failure!.code) {
            // Recorded as git-annex does: a failure in failed/ (git annex get --failed finds it).
            try? record.finish(success: failure == nil)
        } else {
            record.abandon()
        }
        return failure
    }

    private func transfer(_ running: RunningTransfer) -> TransferFailure? {
        let client: P2PClient
        if let reused = pool.take(repo: annex.uuid, peer: peer.uuid) {
            client = reused
        } else {
            do { client = try dialer.connect(remote, of: annex, store: store, socksAddress: socks) } catch {
                return running.stopReason ?? TransferFailure(code: error.code, message: error.description)
            }
        }
        client.conn.meter = running.meter
        client.onStage = { stage in
            running.stage.withLock {
                switch stage {
                case .data(let offset):
                    $0 = (offset, false, true)
                    running.meter.dataStarted()
                case .verifying: $0.verifying = true; $0.inData = false
                }
            }
        }
        running.attach(client)
        let failure = attempt(client)
        running.attach(nil)
        if let stop = running.stopReason {
            client.close()
            return stop
        }
        if failure == nil || failure?.code == "not_on_peer" {
            pool.give(client, repo: annex.uuid, peer: peer.uuid)
        } else {
            client.close()
        }
        return failure
    }

    private var describe: String { file ?? key.serialized }

    private func attempt(_ client: P2PClient) -> TransferFailure? {
        do {
            switch direction {
            case .get:
                if try client.get(key, file: file ?? "") { return populateIfUnlocked() }
                if client.peerLacksContent {
                    return TransferFailure(code: "not_on_peer", message: "\(peerName) does not have \(describe)")
                }
                if let e = client.lastStoreError { return Self.storeFailure(e, describe) }
                return TransferFailure(code: "verify_failed", message: "the content of \(describe) from \(peerName) was refused: it changed while it was sent, or does not match its key")
            case .put:
                switch try client.put(key, file: file ?? "") {
                case .stored, .alreadyHad:
                    try store.log.setPresent(key, true, in: peer.uuid)
                    return nil
                case .failed:
                    return TransferFailure(code: "peer_refused", message: "\(peerName) did not store \(describe) (it may be full, read-only for this repository, or unable to verify it)")
                }
            }
        } catch let e as P2PClient.ClientError {
            switch e {
            case .closed: return TransferFailure(code: "peer_unreachable", message: "the connection to \(peerName) broke during \(describe); the partial is kept and the transfer resumes")
            case .authFailed: return TransferFailure(code: "auth_failed", message: "\(peerName) refused this repository's token")
            default: return TransferFailure(code: "protocol_error", message: "\(peerName): \(e)")
            }
        } catch let e as FDConnection.ReadError {
            return TransferFailure(code: "protocol_error", message: "\(peerName) sent something that is not a P2P message during \(describe) (\(e)); what was received before it is kept")
        } catch {
            return Self.storeFailure(error, describe)
        }
    }

    private var peerName: String { peer.name ?? peer.uuid }

    static func storeFailure(_ error: Error, _ what: String) -> TransferFailure {
        if let s = error as? SystemError, s.errno == ENOSPC || s.errno == EDQUOT {
            return TransferFailure(code: "disk_full", message: "no space left to store \(what) (\(s)): free some space; the partial is kept")
        }
        if error is ObjectStore.StoreError {
            return TransferFailure(code: "verify_failed", message: "\(error)")
        }
        return TransferFailure(code: "io_error", message: "\(what): \(error)")
    }

    /// After a get: fills the work-tree copy of an unlocked file, as `git annex get` does.
    private func populateIfUnlocked() -> TransferFailure? {
        guard let file, AnnexQueries.isUnpopulatedPointer(file, key: key, in: annex),
              let object = store.contentPath(key) else { return nil }
        do { try AnnexQueries.populate(file, key: key, object: object, in: annex) } catch {
            return TransferFailure(code: "io_error", message: "\(error)")
        }
        return nil
    }
}
