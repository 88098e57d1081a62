#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import Shared

/// annex-cli's transfer commands (get, copy, drop, transfers, cancel…) run for real against a
/// real annexd, for what needs no transfer engine: finding the repository, usage errors, and
/// an annexd without transfer.* (this branch's) answered with a clear "upgrade it".
@Suite(.timeLimit(.minutes(5))) struct TransferCLITests {
    /// A git repository in the daemon's scratch directory (annex-cli only needs git to find it).
    func gitRepository(in d: DaemonProcess) throws -> String {
        let repo = d.dir + "/repo"
        let r = try DaemonProcess.run(["git", "init", "-q", repo])
        #expect(r.status == 0, "git init: \(r.stderr)")
        try FileManager.default.createDirectory(atPath: repo + "/photos", withIntermediateDirectories: true)
        return repo
    }

    @Test func getOutsideAnyRepositoryIsAClearError() throws {
        let d = try DaemonProcess()
        let r = try d.annexCLI(["get", "a.jpg"], cwd: d.dir)
        #expect(r.status == 64, "a usage error: \(r)")
        #expect(r.stderr.contains("not inside a git repository; use --repo PATH"), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    @Test func aPathOutsideTheRepositoryIsAClearError() throws {
        let d = try DaemonProcess()
        let repo = try gitRepository(in: d)
        let r = try d.annexCLI(["get", "../elsewhere.jpg"], cwd: repo + "/photos/..")
        #expect(r.status == 64, "\(r)")
        #expect(r.stderr.contains("../elsewhere.jpg is outside the repository \(repo)"), "\(r.stderr)")
    }

    @Test func selectionsNeedIdsOrAll() throws {
        for verb in ["cancel", "pause", "resume", "retry"] {
            let none = try DaemonProcess.run([DaemonProcess.annexCLIPath, verb])
            #expect(none.status == 64, "\(verb): \(none)")
            #expect(none.stderr.contains("give transfer ids (see `annex-cli transfers`), or --all"), "\(none.stderr)")
            #expect(none.stderr.contains("Usage: annex-cli \(verb)"), "\(none.stderr)")
        }
        let both = try DaemonProcess.run([DaemonProcess.annexCLIPath, "cancel", "t1", "--all"])
        #expect(both.status == 64 && both.stderr.contains("give transfer ids or --all, not both"), "\(both)")
        let repoWithoutAll = try DaemonProcess.run([DaemonProcess.annexCLIPath, "pause", "t1", "--repo", "/r"])
        #expect(repoWithoutAll.status == 64 && repoWithoutAll.stderr.contains("--repo goes with --all"), "\(repoWithoutAll)")
        let noPeer = try DaemonProcess.run([DaemonProcess.annexCLIPath, "copy", "a.jpg"])
        #expect(noPeer.status == 64 && noPeer.stderr.contains("--to"), "copy needs --to: \(noPeer)")
    }

    /// The real situation until annexd has a transfer engine: transfer.* and content.drop
    /// are "method not found", which annex-cli turns into "upgrade it".
    @Test func anAnnexdWithoutTransfersSaysUpgradeIt() throws {
        let d = try DaemonProcess()
        let repo = try gitRepository(in: d)
        let upgrade = "annex-cli: this annexd does not support transfers: upgrade it\n"
        for args in [["get", "photos/a.jpg"], ["copy", "--to", "nas", "a.jpg"], ["get", "--no-wait", "a.jpg"],
                     ["transfers"], ["transfers", "--follow"], ["cancel", "--all"], ["retry", "t1"]] {
            let r = try d.annexCLI(args, cwd: repo + "/photos")
            #expect(r.status == 1, "\(args): \(r)")
            #expect(r.stderr == upgrade, "\(args)")
            #expect(r.stdout.isEmpty, "\(args)")
        }
        let drop = try d.annexCLI(["drop", "a.jpg"], cwd: repo)
        #expect(drop.status == 1 && drop.stderr == "annex-cli: this annexd does not support dropping content: upgrade it\n", "\(drop)")

        let json = try d.annexCLI(["get", "--json", "a.jpg"], cwd: repo)
        #expect(json.status == 1)
        let error = try JSONValue(parsing: json.stdout.trimmingCharacters(in: .newlines))["error"]
        #expect(error?["code"] == .int(-32601), "\(json.stdout)")
        #expect(error?["message"]?.stringValue == "this annexd does not support transfers: upgrade it")
        #expect(error?["data"]?["reason"]?.stringValue == "method_not_found")
        #expect(error?["data"]?["method"]?.stringValue == "transfer.start")
        #expect(d.isRunning, "annexd:\n\(d.log)")
    }

    @Test func aPseudoTerminalIsATerminal() throws {
        let probe = ["sh", "-c", "if test -t 1; then echo tty $(stty size); else echo notty; fi"]
        let onTerminal = try PseudoTerminal.run(probe, columns: 123, rows: 45)
        #expect(onTerminal.status == 0)
        #expect(onTerminal.output == "tty 45 123\r\n")
        let plain = try DaemonProcess.run(probe)
        #expect(plain.status == 0 && plain.stdout == "notty\n")
        let failing = try PseudoTerminal.run(["sh", "-c", "printf 'a\\nb'; exit 3"])
        #expect(failing.status == 3 && failing.output == "a\r\nb")
    }
}
