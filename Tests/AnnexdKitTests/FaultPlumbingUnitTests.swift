#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// Fault injection below the daemon: a command that hangs is killed with everything it
/// started once its time limit passes; store errors (EIO, EACCES, ENOSPC) become the transfer
/// failure codes and messages a user sees, injected where the worker classifies them (a real
/// EIO from a shut-down filesystem: FaultStorageTests).
@Suite struct FaultPlumbingUnitTests {
    @Test func aHangingCommandAndItsChildrenAreKilledAtTheTimeLimit() throws {
        let started = Date()
        #expect(throws: Command.TimedOut.self) {
            // A child in the background keeps stdout open: killing the shell alone would not do.
            _ = try Command.run(["sh", "-c", "sleep 3037 & exec sleep 3038"], timeout: 0.5)
        }
        let took = Date().timeIntervalSince(started)
        #expect(took >= 0.5 && took < 5, "stopped after \(took) s")
        let left = try Command.run(["sh", "-c", "ps -eo args | grep -c '^sleep 303[78]$' || true"]).stdout
        #expect(left.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "the shell's children were killed too")
        let e = Command.TimedOut(command: ["git", "annex", "find"], seconds: 3)
        #expect(e.description == "git annex find did not finish within 3 s and was stopped (it and what it started were killed)")
    }

    @Test func aCommandWithinItsLimitRunsAsWithout() throws {
        let r = try Command.run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout: 10)
        #expect(r.status == 3 && r.stdout == "out\n" && r.stderr == "err\n")
    }

    @Test func storeErrorsBecomeTheirTransferFailures() {
        let path = "/r/.git/annex/tmp/SHA256E-s1--ab"
        let eio = TransferWorker.storeFailure(SystemError("write", path: path, errno: EIO), "big")
        #expect(eio == TransferFailure(code: "io_error", message: "big: write \(path): Input/output error"))
        let denied = TransferWorker.storeFailure(SystemError("open", path: path, errno: EACCES), "big")
        #expect(denied == TransferFailure(code: "io_error", message: "big: open \(path): Permission denied"))
        let full = TransferWorker.storeFailure(SystemError("write", path: path, errno: ENOSPC), "big")
        #expect(full.code == "disk_full" && full.message.contains("No space left on device") && full.message.contains("the partial is kept"))
        #expect(TransferQueue.retryable.contains(eio.code) && !TransferQueue.retryable.contains(full.code),
                "an I/O error is retried, a full disk waits for transfer.retry")
    }
}
