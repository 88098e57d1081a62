import AnnexdKit
import Foundation
import Shared

/// `annexd-bench p2p-load SOCKET TOKEN REPO KEYSFILE CONNECTIONS SECONDS [INTERVAL]`: CONNECTIONS P2P peers
/// at once against one annexd listener (SOCKET: the unix socket tor would connect to; TOKEN:
/// one that listener accepts), each with its own authenticated connection, getting keys into
/// REPO again and again for SECONDS (after each verified get the object is evicted so the next
/// round gets it again). Key i belongs to connection i mod CONNECTIONS, so no two peers write
/// the same partial. INTERVAL (seconds, optional) paces each peer to one get per INTERVAL.
/// Prints gets, p50 and p99 of a get in ms, MB/s, failures, and connection retries.
enum P2PLoad {
    final class Peer: @unchecked Sendable {
        let keys: [AnnexKey]
        var millis: [Double] = []
        var bytes: Int64 = 0
        var failures: [String] = []
        init(keys: [AnnexKey]) { self.keys = keys }

        /// Connection attempts that were refused and tried again.
        var retries = 0

        /// An authenticated connection. The listener closes connections past its limit of
        /// unauthenticated ones at accept (32), so a refused peer tries again a little later, as
        /// a git-annex peer would; the tries are counted.
        func connect(socket: String, token: String, store: ObjectStore) -> P2PClient? {
            var last: Error?
            for attempt in 0..<20 {
                do {
                    let fd = try UnixSocket.connect(socket)
                    let client = P2PClient(connection: FDConnection(readFD: fd, writeFD: fd), store: store, ownsFD: true)
                    do {
                        try client.connect(clientUUID: UUID().uuidString.lowercased(), token: token)
                        return client
                    } catch {
                        client.close()
                        last = error
                    }
                } catch {
                    last = error
                }
                retries += 1
                usleep(UInt32(50_000 * (attempt + 1)))
            }
            failures.append("connect: \(last.map { "\($0)" } ?? "?")")
            return nil
        }

        func run(socket: String, token: String, store: ObjectStore, until end: Double, interval: Double) {
            guard let client = connect(socket: socket, token: token, store: store) else { return }
            defer { client.close() }
            var i = 0
            while now() < end && failures.count < 10 {
                let key = keys[i % keys.count]
                i += 1
                let t0 = now()
                defer { if interval > 0 { usleep(UInt32(max(0, interval - (now() - t0)) * 1e6)) } }
                do {
                    guard try client.get(key) else { failures.append("get \(key) failed"); continue }
                    millis.append((now() - t0) * 1000)
                    bytes += key.size ?? 0
                    try P2PLoad.evict(key, from: store)
                } catch {
                    failures.append("get \(key): \(error)")
                    return
                }
            }
        }
    }

    /// Removes a got object's file (and its read-only key directory) behind git-annex's back:
    /// the bench repository exists only to be received into.
    static func evict(_ key: AnnexKey, from store: ObjectStore) throws {
        guard let path = store.contentPath(key) else { return }
        let dir = Posix.dirname(path)
        chmod(dir, 0o755)
        guard unlink(path) == 0 else { throw SystemError("unlink", path: path) }
        rmdir(dir)
    }

    static func run(socket: String, token: String, repo: String, keysFile: String, connections: Int, seconds: Double,
                    interval: Double = 0) -> String {
        let keys: [AnnexKey]
        let store: ObjectStore
        do {
            keys = try String(contentsOfFile: keysFile, encoding: .utf8).split(separator: "\n").map { try AnnexKey(parsing: String($0)) }
            store = ObjectStore(repo: try AnnexRepo(path: repo))
        } catch {
            fail("\(error)")
        }
        guard keys.count >= connections else { fail("\(keys.count) keys for \(connections) connections: each needs its own") }
        let peers = (0..<connections).map { c in Peer(keys: stride(from: c, to: keys.count, by: connections).map { keys[$0] }) }
        let start = now(), end = start + seconds
        onThreads(peers) { $0.run(socket: socket, token: token, store: store, until: end, interval: interval) }
        let elapsed = now() - start
        var millis = peers.flatMap(\.millis)
        millis.sort()
        let failures = peers.flatMap(\.failures)
        for f in failures.prefix(5) { FileHandle.standardError.write(Data("annexd-bench p2p-load: \(f)\n".utf8)) }
        guard !millis.isEmpty else { fail("no get finished in \(seconds) s") }
        let bytes = peers.reduce(Int64(0)) { $0 + $1.bytes }
        return String(format: "%d %.1f %.1f %.1f %d %d", millis.count, millis[millis.count / 2], millis[millis.count * 99 / 100],
                      Double(bytes) / elapsed / 1e6, failures.count, peers.reduce(0) { $0 + $1.retries })
    }
}
