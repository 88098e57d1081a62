#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// How annexd picks its tor (--tor auto|system|own) and what it says when it
/// cannot get one. Offline: annexd's own tor runs with `DisableNetwork 1`.
@Suite(.timeLimit(minutes: 10)) struct TorModeTests {
    static func offlineConfig(_ dir: String) throws -> String {
        let path = dir + "/offline.torrc"
        try "DisableNetwork 1\n".write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func status(_ d: DaemonProcess, until done: (TorStatus) -> Bool, timeout: TimeInterval = 30) throws -> TorStatus {
        try d.torStatus(timeout: timeout, until: done)
    }

    static func isRunning(_ pid: Int) -> Bool { kill(Int32(pid), 0) == 0 }

    @Test func autoFallsBackToOwnTorAndItsTorEndsWithAnnexd() throws {
        let scratch = Scratch("annexd-tmode")
        let d = try DaemonProcess(tor: ["--tor", "auto", "--tor-control", "unix:\(scratch.path)/no-such-control", "--socks", "auto",
                                        "--tor-extra-config", try Self.offlineConfig(scratch.path)])
        let s = try Self.status(d) { $0.using == "own" }
        #expect(s.using == "own", "\(s.json)\n\(d.log)")
        #expect(s.mode == "auto")
        let pid = try #require(s.pid)
        // (With DisableNetwork tor opens no SOCKS listener, so there is no SOCKS address to report.)
        // The generated torrc: own DataDirectory, control socket with cookie auth, owned by annexd.
        let torrc = try String(contentsOfFile: d.stateDir + "/tor/torrc", encoding: .utf8)
        for line in ["DataDirectory \(d.stateDir)/tor/data", "ControlSocket \(d.stateDir)/tor/control", "CookieAuthentication 1",
                     "SocksPort 127.0.0.1:auto", "__OwningControllerProcess \(d.pid)", "DisableNetwork 1"] {
            #expect(torrc.contains(line + "\n"), "\(line) missing from\n\(torrc)")
        }
        var st = stat()
        #expect(stat(d.stateDir + "/tor/data", &st) == 0 && st.st_mode & 0o777 == 0o700)
        // SIGTERM: annexd stops its tor before it exits.
        #expect(d.terminate() == 0)
        let deadline = Date().addingTimeInterval(10)
        while Self.isRunning(pid) && Date() < deadline { usleep(50_000) }
        #expect(!Self.isRunning(pid), "annexd's tor (pid \(pid)) outlived annexd")
    }

    @Test func ownTorKilledWithAnnexdExitsToo() throws {
        let scratch = Scratch("annexd-tmode")
        let d = try DaemonProcess(tor: ["--tor", "own", "--socks", "auto", "--tor-extra-config", try Self.offlineConfig(scratch.path)])
        let pid = try #require(try Self.status(d) { $0.using == "own" }.pid)
        kill(d.pid, SIGKILL)
        _ = d.waitForExit()
        // TAKEOWNERSHIP: tor exits when its owner's control connection closes.
        let deadline = Date().addingTimeInterval(10)
        while Self.isRunning(pid) && Date() < deadline { usleep(50_000) }
        #expect(!Self.isRunning(pid), "annexd's tor (pid \(pid)) outlived a killed annexd")
    }

    @Test func systemWithoutControlPortSaysWhatToDo() throws {
        let scratch = Scratch("annexd-tmode")
        let d = try DaemonProcess(tor: ["--tor", "system", "--tor-control", "unix:\(scratch.path)/no-such-control"])
        let s = try Self.status(d) { $0.error != nil }
        #expect(s.using == "unavailable" || s.using == "connecting")
        let error = try #require(s.error)
        #expect(error.contains("no-such-control") && error.contains("annex-cli tor enable --system"), "\(error)")
        #expect(!Posix.exists(d.stateDir + "/tor"), "--tor system must not start or configure a tor of its own")
        let cli = try d.annexCLI("tor", "status")
        #expect(cli.status == 0 && cli.stdout.contains("annex-cli tor enable --system"), "\(cli)")
    }

    @Test(.enabled(if: geteuid() == 0, "starting a tor as another user (nobody) needs root"))
    func systemTorOfAnotherUserIsNotUsed() throws {
        let scratch = Scratch("annexd-tmode")
        chmod(scratch.path, 0o711)
        let dir = scratch.path + "/t"
        try Posix.makeDirectories(dir + "/data", mode: 0o700)
        let nobody = try #require(getpwnam("nobody"))
        for d in [dir, dir + "/data"] { chown(d, nobody.pointee.pw_uid, nobody.pointee.pw_gid) }
        try """
            DataDirectory \(dir)/data
            ControlSocket \(dir)/c
            CookieAuthentication 1
            SocksPort 0
            DisableNetwork 1

            """.write(toFile: scratch.path + "/torrc", atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: scratch.path + "/empty", contents: Data())
        chmod(scratch.path + "/torrc", 0o644)
        chmod(scratch.path + "/empty", 0o644)
        let tor = try BackgroundProcess(["setpriv", "--reuid=\(nobody.pointee.pw_uid)", "--regid=\(nobody.pointee.pw_gid)", "--clear-groups",
                                         "tor", "-f", scratch.path + "/torrc", "--defaults-torrc", scratch.path + "/empty", "--quiet"], logPath: nil)
        defer { tor.stop() }
        let deadline = Date().addingTimeInterval(20)
        while !Posix.exists(dir + "/c") && tor.exited == nil && Date() < deadline { usleep(50_000) }
        #expect(Posix.exists(dir + "/c"), "tor as nobody did not open its control socket")

        let system = try DaemonProcess(tor: ["--tor", "system", "--tor-control", dir + "/c"])
        let refused = try Self.status(system) { $0.error != nil }
        #expect(refused.error?.contains("runs as nobody") == true && refused.error?.contains("--tor own") == true, "\(refused.json)")
        #expect(refused.using != "system")

        let auto = try DaemonProcess(tor: ["--tor", "auto", "--tor-control", dir + "/c", "--socks", "auto",
                                           "--tor-extra-config", try Self.offlineConfig(scratch.path)])
        let chosen = try Self.status(auto) { $0.using == "own" }
        #expect(chosen.using == "own", "\(chosen.json)")
    }

    @Test func onionsAddedOnceWhileTorStartsAndAgainAfterItDies() throws {
        let scratch = Scratch("annexd-tmode")
        for i in 0..<6 {
            try sh("git init -q r\(i) && cd r\(i) && git annex init -q r\(i)", in: scratch.path)
        }
        let d = try DaemonProcess(tor: ["--tor", "own", "--socks", "auto", "--tor-extra-config", try Self.offlineConfig(scratch.path)])
        // Repositories arrive while annexd's tor is still starting.
        for i in 0..<6 { _ = try d.call("repo.add", .object(["path": .string("\(scratch.path)/r\(i)")])) }
        let s = try Self.status(d) { $0.onions.count == 6 && $0.onions.allSatisfy { $0.state == "added" } }
        #expect(s.onions.count == 6 && s.onions.allSatisfy { $0.state == "added" }, "\(s.json)")
        let pid = try #require(s.pid)
        // tor dies: annexd starts another and adds every onion again, once each.
        kill(Int32(pid), SIGKILL)
        let again = try Self.status(d, until: { $0.pid != nil && $0.pid != pid && $0.onions.allSatisfy { $0.state == "added" } }, timeout: 30)
        #expect(again.pid != pid && again.onions.allSatisfy { $0.state == "added" }, "\(again.json)")
        let events = try d.annexCLI("events", "--since", "0", "--json").stdout
        #expect(!events.contains("onion.failed"), "\(events)")
        #expect(events.contains("tor.disconnected"), "\(events)")
    }

    @Test func badTorFlagsAreRefusedClearly() throws {
        for (args, needle) in [(["--tor", "sometimes"], "--tor must be auto, system, own or none"),
                               (["--tor-control", "relative/path"], "--tor-control must be"),
                               (["--socks", "9050"], "--socks must be HOST:PORT"),
                               (["--tor-extra-config", "/nonexistent/extra.torrc"], "no such readable file")] {
            let r = try DaemonProcess.run([TestEnvironment.annexd, "daemon", "--state-dir", "/tmp/annexd-never", "--socket", "/tmp/annexd-never.sock"] + args)
            #expect(r.status != 0 && r.stderr.contains(needle), "\(args): \(r)")
            #expect(!r.stderr.contains("Fatal error"), "\(args): \(r.stderr)")
        }
    }
}
