#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import Shared

/// annex-cli's transfer commands (get, copy, drop, transfers, cancel…) run for real, for what
/// needs no peer: finding the repository and usage errors. (TransferCLIEngineTests: with peers.)
@Suite(.timeLimit(minutes: 5)) struct TransferCLITests {
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
