import Foundation
import Shared
import Synchronization

/// Keeps the git-annex branch's location log true, through git-annex's own
/// plumbing (`git annex setpresentkey --batch`), never by editing it by hand.
/// One batch process per repository, started on first use.
public final class LocationLog: @unchecked Sendable {
    private let repo: AnnexRepo
    private let lock = NSLock()
    private var process: Process?
    private var input: FileHandle?
    private var output: FileHandle?
    private var pending = Data()

    public init(repo: AnnexRepo) { self.repo = repo }

    private struct ProcessDied: Error {}

    public struct LogError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Records that `key` is (or is not) present in this repository.
    public func setPresent(_ key: AnnexKey, _ present: Bool) throws {
        try lock.withLock {
            let line = "\(key.serialized) \(repo.uuid) \(present ? 1 : 0)\n"
            for attempt in 0..<2 {
                do {
                    try ensureStarted()
                    try input!.write(contentsOf: Data(line.utf8))
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

    public func close() {
        lock.withLock { stopLocked() }
    }

    deinit { stopLocked() }

    private func ensureStarted() throws {
        if process != nil { return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git", "annex", "setpresentkey", "--batch"]
        p.currentDirectoryURL = URL(fileURLWithPath: repo.path)
        let inp = Pipe(), out = Pipe()
        p.standardInput = inp
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        input = inp.fileHandleForWriting
        output = out.fileHandleForReading
        pending = Data()
    }

    private func readLine() throws -> String {
        while true {
            if let nl = pending.firstIndex(of: 10) {
                let line = String(decoding: pending[pending.startIndex..<nl], as: UTF8.self)
                pending = Data(pending[(nl + 1)...])
                return line
            }
            // FileHandle.read(upToCount:) waits for the whole count; read(2) returns what is there.
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = buf.withUnsafeMutableBytes { read(output!.fileDescriptor, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ProcessDied() }
            pending.append(contentsOf: buf[0..<n])
        }
    }

    private func stopLocked() {
        try? input?.close()
        if let p = process {
            p.waitUntilExit()
        }
        process = nil
        input = nil
        output = nil
    }
}
