import Foundation
import Shared
import Synchronization

/// Keeps the git-annex branch's location log true, through git-annex's own
/// plumbing (`git annex setpresentkey --batch`), never by editing it by hand.
/// One batch process per repository, started on first use.
public final class LocationLog: @unchecked Sendable {
    private let repo: AnnexRepo
    private let lock = NSLock()
    private var process: ChildProcess?
    private var pending: [UInt8] = []

    public init(repo: AnnexRepo) { self.repo = repo }

    private struct ProcessDied: Error {}

    public struct LogError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Records that `key` is (or is not) present in this repository, or in the repository
    /// `uuid` (a peer, after a put to it or a remove from it, as git-annex records them).
    public func setPresent(_ key: AnnexKey, _ present: Bool, in uuid: String? = nil) throws {
        try lock.withLock {
            let line = "\(key.serialized) \(uuid ?? repo.uuid) \(present ? 1 : 0)\n"
            for attempt in 0..<2 {
                do {
                    try ensureStarted()
                    try Array(line.utf8).withUnsafeBytes { try Posix.writeAll(fd: process!.stdinFD, $0, what: "git annex setpresentkey") }
                    let reply = try readLine()
                    if reply.hasSuffix(" ok") { return }
                    throw LogError(description: "git annex setpresentkey \(key): \(reply)")
                } catch let e as LogError {
                    throw e
                } catch {
                    // The batch process died (e.g. killed); start a new one once.
                    stopLocked()
                    if attempt == 1 { throw LogError(description: "git annex setpresentkey failed: \(error)") }
                }
            }
        }
    }

    /// Starts the batch process ahead of need (when content starts arriving), so
    /// git-annex's start-up overlaps the transfer instead of following it.
    public func prepare() {
        lock.withLock { try? ensureStarted() }
    }

    public func close() {
        lock.withLock { stopLocked() }
    }

    deinit { stopLocked() }

    private func ensureStarted() throws {
        if process != nil { return }
        process = try ChildProcess(["git", "annex", "setpresentkey", "--batch"], cwd: repo.path, quietStderr: true)
        pending = []
    }

    private func readLine() throws -> String {
        while true {
            if let nl = pending.firstIndex(of: 10) {
                let line = String(decoding: pending[..<nl], as: UTF8.self)
                pending.removeSubrange(...nl)
                return line
            }
            // FileHandle.read(upToCount:) waits for the whole count; read(2) returns what is there.
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = buf.withUnsafeMutableBytes { read(process!.stdoutFD, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ProcessDied() }
            pending.append(contentsOf: buf[0..<n])
        }
    }

    private func stopLocked() {
        process?.closeStdin()
        process?.wait()
        process = nil
    }
}
