#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
import Shared

/// The integrations in contrib/examples, run as a user would copy them, against a real annexd.
@Suite(.timeLimit(minutes: 10)) struct ExamplesTests {
    static let examples = TestEnvironment.packageRoot + "/contrib/examples"
    static let haveSocatAndJq = ["socat", "jq"].allSatisfy { tool in
        ["/usr/bin/", "/bin/", "/usr/local/bin/"].contains { FileManager.default.isExecutableFile(atPath: $0 + tool) }
    }

    /// A daemon with one registered git-annex repository: (daemon, scratch, repo path).
    func daemonWithRepo() throws -> (DaemonProcess, Scratch, String) {
        let d = try DaemonProcess()
        let scratch = Scratch("annexd-examples")
        try sh("git init -q myrepo && cd myrepo && git annex init -q myrepo", in: scratch.path)
        let repo = scratch.path + "/myrepo"
        let r = try d.annexCLI("repo", "add", repo)
        #expect(r.status == 0, "repo add: \(r.stdout) \(r.stderr)")
        return (d, scratch, repo)
    }

    @Test(.enabled(if: haveSocatAndJq, "needs socat and jq (make deps installs them)"))
    func shellStatusExampleListsTheRepo() throws {
        let (d, scratch, repo) = try daemonWithRepo()
        defer { withExtendedLifetime(scratch) {} }
        let r = try DaemonProcess.run(["sh", Self.examples + "/annexd-status.sh"], env: ["ANNEXD_SOCKET": d.socketPath])
        #expect(r.status == 0, "annexd-status.sh failed:\n\(r.stdout)\n\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.first?.contains("pid \(d.pid)") == true, "\(r.stdout)")
        #expect(lines.first?.contains("1 repos") == true, "\(r.stdout)")
        let repoLine = try #require(lines.first { $0.hasPrefix(repo + "\t") }, "no line for \(repo):\n\(r.stdout)")
        #expect(repoLine.contains("tor-annex::"), "\(repoLine)")

        // With no daemon: a clear message and status 1.
        let gone = try DaemonProcess.run(["sh", Self.examples + "/annexd-status.sh"],
                                         env: ["ANNEXD_SOCKET": d.dir + "/no-such.sock"])
        #expect(gone.status == 1, "\(gone)")
        #expect(gone.stderr.contains("not answering"), "\(gone.stderr)")
    }

    /// Runs annexd_events.py in the background; its output goes to a file read by `waitFor`.
    final class EventsFollower {
        let pid: Int32
        let out: String
        init(_ d: DaemonProcess, _ args: [String], name: String) throws {
            out = d.dir + "/\(name).out"
            pid = try DaemonProcess.spawn(["python3", ExamplesTests.examples + "/annexd_events.py", "--socket", d.socketPath] + args,
                                          env: ["PYTHONUNBUFFERED": "1"], stdinPath: nil, outputPath: out)
        }
        deinit {
            kill(pid, SIGKILL)
            _ = DaemonProcess.waitForExit(pid: pid, timeout: 5)
        }
        var text: String { (try? String(contentsOfFile: out, encoding: .utf8)) ?? "" }
        /// Waits (bounded) until the output has a line satisfying `match`.
        @discardableResult
        func waitFor(_ what: String, timeout: TimeInterval = 10, _ match: (Substring) -> Bool) throws -> Substring {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if let line = text.split(separator: "\n").first(where: match) { return line }
                if let code = DaemonProcess.waitForExit(pid: pid, timeout: 0) {
                    throw DaemonProcess.Failure(description: "annexd_events.py exited (\(code)) before \(what):\n\(text)")
                }
                usleep(20_000)
            }
            throw DaemonProcess.Failure(description: "annexd_events.py printed no \(what) within \(timeout) s:\n\(text)")
        }
    }

    @Test func pythonEventsExampleFollowsEvents() throws {
        let (d, scratch, repo) = try daemonWithRepo()
        defer { withExtendedLifetime(scratch) {} }
        let follower = try EventsFollower(d, [], name: "live")
        try follower.waitFor("subscription") { $0.hasPrefix("# subscribed") }
        // Without --since: a snapshot first, naming the registered repository.
        try follower.waitFor("snapshot") { $0.contains(" snapshot ") && $0.contains(repo) }

        let invite = try d.annexCLI("invite", "--repo", repo, "--name", "alice")
        #expect(invite.status == 0, "invite: \(invite.stdout) \(invite.stderr)")
        let line = try follower.waitFor("peer.invited event") { $0.contains(" peer.invited ") }
        #expect(line.contains("peer=alice"), "\(line)")
        #expect(line.contains("repo=\(repo)"), "\(line)")
        let secret = invite.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(secret.hasPrefix("tor-annex::") && !follower.text.contains(secret), "the secret address must not be in events")

        // --since 0 replays from the start of this boot: repo.added, then the invitation.
        let replay = try EventsFollower(d, ["--since", "0"], name: "replay")
        let added = try replay.waitFor("replayed repo.added") { $0.contains(" repo.added ") }
        let invited = try replay.waitFor("replayed peer.invited") { $0.contains(" peer.invited ") }
        let addedID = Int(added.split(separator: " ")[0]) ?? -1
        let invitedID = Int(invited.split(separator: " ")[0]) ?? -1
        #expect(addedID >= 1 && invitedID > addedID, "ids: \(addedID) \(invitedID)\n\(replay.text)")
        #expect(!replay.text.contains(" snapshot "), "--since replays instead of a snapshot:\n\(replay.text)")
    }
}
