#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit

/// A bare `annexd` (what `make run` starts) says, once ready and only while it has no
/// repository, what to do next and where the socket and the logs are.
@Suite(.timeLimit(minutes: 5)) struct FirstRunTests {
    /// Polls `log` (bounded) until it contains `text`.
    func waitFor(_ text: String, in log: () -> String, timeout: TimeInterval = 15) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if log().contains(text) { return }
            usleep(20_000)
        }
        throw DaemonProcess.Failure(description: "no \(text.debugDescription) within \(timeout) s:\n\(log())")
    }

    @Test func bareAnnexdSaysWhatToDoNextUntilItHasARepository() throws {
        let dir = DaemonProcess.makeScratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Posix.makeDirectories(dir + "/run")
        let env = ["XDG_RUNTIME_DIR": dir + "/run", "XDG_STATE_HOME": dir + "/state", "ANNEXD_SOCKET": "", "JOURNAL_STREAM": ""]
        let socket = dir + "/run/annexd/rpc.sock"

        func start(_ n: Int) throws -> (pid: Int32, log: String) {
            let log = dir + "/annexd-\(n).log"
            let pid = try DaemonProcess.spawn([TestEnvironment.annexd, "--tor", "none"], env: env, stdinPath: nil, outputPath: log)
            return (pid, log)
        }
        func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        func stop(_ pid: Int32) {
            kill(pid, SIGTERM)
            if DaemonProcess.waitForExit(pid: pid, timeout: 10) == nil { kill(pid, SIGKILL); _ = DaemonProcess.waitForExit(pid: pid, timeout: 5) }
        }

        let first = try start(1)
        var stopped = false
        defer { if !stopped { stop(first.pid) } }
        try waitFor("Logs: this terminal", in: { text(first.log) })
        let hint = text(first.log)
        #expect(hint.contains("annexd is ready, with no repository yet. Next:"), "\(hint)")
        for command in ["annex-cli repo add PATH", "annex-cli invite --repo PATH", "annex-cli pair --repo PATH"] {
            #expect(hint.contains("\n  \(command) "), "no \(command) in:\n\(hint)")
        }
        #expect(hint.contains("Socket: \(socket)"), "\(hint)")
        #expect(!hint.contains("annex-cli looks for"), "annex-cli finds this socket by itself:\n\(hint)")

        // As the hint says: annex-cli, with no --socket, adds a repository.
        try sh("git init -q r && cd r && git annex init -q r", in: dir)
        let add = try DaemonProcess.run([DaemonProcess.annexCLIPath, "repo", "add", dir + "/r"], env: env)
        #expect(add.status == 0, "\(add)")
        stop(first.pid)
        stopped = true

        // With a repository, a restart says nothing of the kind (checked once it exited).
        let second = try start(2)
        let client = try RPCTestConnection.waitForSocket(socket)
        #expect(try client.request("repo.list")["result"]?["repos"]?.arrayValue?.count == 1)
        stop(second.pid)
        #expect(!text(second.log).contains("no repository yet"), "\(text(second.log))")
    }

    @Test func aSocketAnnexCLIWouldNotFindIsNamedWithHowToReachIt() throws {
        let d = try DaemonProcess(env: ["ANNEXD_SOCKET": "", "JOURNAL_STREAM": "1:2"])
        try waitFor("annex-cli looks for", in: { d.log })
        #expect(d.log.contains("give it --socket \(d.socketPath) (or set ANNEXD_SOCKET)"), "\(d.log)")
        #expect(d.log.contains("Logs: the journal (journalctl --user -u annexd)"), "\(d.log)")
    }
}

extension RPCTestConnection {
    /// A connection once `path` accepts one (bounded).
    static func waitForSocket(_ path: String, timeout: TimeInterval = 15) throws -> RPCTestConnection {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            do { return try RPCTestConnection(path: path) } catch {
                if Date() > deadline { throw error }
                usleep(20_000)
            }
        }
    }
}
