#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// What every fault-injection test checks afterwards: the error the daemon reported for a
/// transfer, that it still serves, and that it holds no more descriptors than before.
enum FaultChecks {
    /// The `error` objects of every transfer.failed event of transfer `id`, oldest first.
    static func failures(of id: String, on d: DaemonProcess) throws -> [JSONValue] {
        try d.annexCLI("events", "--since", "0", "--json").stdout.split(separator: "\n").compactMap { line in
            guard let e = try? JSONValue(parsing: String(line)), e["type"]?.stringValue == "transfer.failed",
                  e["transfer"]?["id"]?.stringValue == id else { return nil }
            return e["transfer"]?["error"]
        }
    }

    /// The daemon answers `daemon.status` on a fresh connection and still runs.
    static func expectServing(_ d: DaemonProcess, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let status = try d.call("daemon.status")
        #expect(status["pid"]?.intValue == Int64(d.pid), "daemon.status: \(status)", sourceLocation: sourceLocation)
        #expect(d.isRunning, "annexd exited:\n\(d.log)", sourceLocation: sourceLocation)
    }

    /// The daemon's open descriptors (/proc/PID/fd).
    static func descriptors(_ d: DaemonProcess) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(d.pid)/fd").count) ?? -1
    }

    /// Waits (bounded) until the daemon holds at most `limit` descriptors; the last count.
    static func descriptorsSettle(_ d: DaemonProcess, atMost limit: Int, timeout: TimeInterval = 10) -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        var n = descriptors(d)
        while n > limit && Date() < deadline {
            usleep(100_000)
            n = descriptors(d)
        }
        return n
    }

    static let isRoot = getuid() == 0
}
