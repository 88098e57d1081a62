#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// The daemon's own resource limits: started with systemd's default soft limit on open files
/// (1024) it raises it to the hard limit, so its own connection limits (1024 RPC connections,
/// 256 P2P connections per repository, …) are what bounds it, not EMFILE.
@Suite(.timeLimit(minutes: 10)) struct DaemonLimitsTests {
    /// The soft and hard "Max open files" of a process, from /proc/PID/limits.
    static func openFileLimits(of pid: Int32) throws -> (soft: String, hard: String) {
        let text = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("Max open files") })
        let fields = line.dropFirst("Max open files".count).split(separator: " ")
        return (String(fields[0]), String(fields[1]))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit"), "needs /usr/bin/prlimit (util-linux)"))
    func softOpenFileLimitIsRaisedToTheHardLimit() throws {
        let d = try DaemonProcess(wrapper: ["/usr/bin/prlimit", "--nofile=1024:4096"])
        let limits = try Self.openFileLimits(of: d.pid)
        #expect(limits.hard == "4096", "\(limits)")
        #expect(limits.soft == "4096", "annexd kept the soft limit \(limits.soft)")
        _ = try d.call("daemon.status")
    }

    /// The transfer queue is bounded: a transfer.start that would go past
    /// --max-queued-transfers is refused whole, with queue_full and what to do, and queues
    /// nothing; once transfers are canceled there is room again.
    @Test func aFullQueueRefusesWholeStartsClearly() throws {
        let f = try TransferFixture(files: ["a": 10], clientDaemon: (nil, ["--max-queued-transfers", "50"]))
        func keys(_ range: Range<Int>) -> JSONValue {
            .array(range.map { .string("SHA256E-s100--" + String(format: "%064x", $0)) })
        }
        let process = f.daemon.process
        // The peer is gone, so every transfer stays unfinished (peer_unreachable is retried).
        f.serving?.kill9()
        let params: (JSONValue) -> JSONValue = { .object(["repo": .string(f.client), "direction": "get", "keys": $0, "peer": "peer"]) }
        _ = try process.call("transfer.start", params(keys(0..<40)))
        let refused = try process.response("transfer.start", params(keys(40..<60)))
        let error = try #require(refused["error"], "\(refused)")
        #expect(error["data"]?["reason"] == "queue_full", "\(error)")
        let message = error["message"]?.stringValue ?? ""
        #expect(message.contains("40 unfinished") && message.contains("50") && message.contains("cancel"), "\(message)")
        #expect(try process.call("transfer.list", ["limit": 1000])["total"]?.intValue == 40)
        _ = try process.call("transfer.cancel", ["all": true])
        #expect(try process.call("transfer.start", params(keys(40..<60)))["transfers"]?.arrayValue?.count == 20)
    }
}
