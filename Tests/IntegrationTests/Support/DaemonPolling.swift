#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import Shared

/// Bounded polls of a running daemon's state, shared by the suites that wait for tor or a transfer.
extension DaemonProcess {
    /// Polls tor.status until `done(status)` or the deadline; the last status.
    @discardableResult
    func torStatus(timeout: TimeInterval = 30, until done: (TorStatus) -> Bool) throws -> TorStatus {
        let deadline = Date().addingTimeInterval(timeout)
        var s = try TorStatus(json: try call("tor.status"), path: "result")
        while !done(s) && Date() < deadline {
            usleep(50_000)
            s = try TorStatus(json: try call("tor.status"), path: "result")
        }
        return s
    }

    /// Polls transfer.get of `id` until `done(transfer)` (by default: it ended) or the deadline;
    /// the last answer.
    func transfer(_ id: String, timeout: TimeInterval = 60,
                  until done: (JSONValue) -> Bool = { ["done", "failed", "canceled"].contains($0["state"]?.stringValue ?? "") }) throws -> JSONValue {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let t = try call("transfer.get", ["id": .string(id)])
            if done(t) || Date() > deadline { return t }
            usleep(100_000)
        }
    }
}
