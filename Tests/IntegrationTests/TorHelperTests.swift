#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
import TorrcKit

/// annex-tor-helper, the built binary, against a tor the test starts: its own torrc and
/// DataDirectory, `DisableNetwork 1` (tor still loads hidden service keys and writes
/// `hostname` offline), reloaded with `--reload-command "kill -HUP <pid>"`. Whether the
/// onion is reachable through a Tor network is the private-network tests' job; here:
/// tor writes the hostname for exactly the lines enable-tor writes, and keeps running.
@Suite(.serialized, .timeLimit(minutes: 10)) struct TorHelperTests {
    static let uuid = "0e2c4f4a-1d7e-4b4a-9d3c-2f1e0a9b8c7d"
    static let uid = "1000"

    // MARK: add, add again, remove

    @Test func addServesTheOnionThenRemoveRestoresTheTorrc() throws {
        let tor = try HelperTor()
        defer { tor.stop() }
        let original = try tor.torrcBytes()

        let add = try tor.helper(["add-hidden-service", "--uid", Self.uid, "--repo-uuid", Self.uuid, "--port", "4242"])
        #expect(add.status == 0, "\(add)\n\(tor.log)")
        let json = try add.object()
        let hsDir = tor.dataDir + "/tor-annex_\(Self.uid)_\(Self.uuid)"
        let socket = tor.socketRoot + "/\(Self.uid)_\(Self.uuid)/s"
        let hostname = try String(contentsOfFile: hsDir + "/hostname", encoding: .utf8)
        #expect(json["ok"] as? Bool == true && json["changed"] as? Bool == true)
        #expect(json["action"] as? String == "add-hidden-service")
        #expect(json["onion"] as? String == String(hostname.dropLast()))
        #expect(hostname.hasSuffix(".onion\n") && hostname.count == 63)
        #expect(json["port"] as? Int == 4242)
        #expect(json["hidden_service_dir"] as? String == hsDir)
        #expect(json["socket"] as? String == socket)
        #expect(json["address"] as? String == "tor-annex::\(hostname.dropLast()):4242")
        // Exactly what git-annex enable-tor appends.
        #expect(try tor.torrcBytes() == original + Array("\nHiddenServiceDir \(hsDir)\nHiddenServicePort 4242 unix:\(socket)\n".utf8))
        #expect(try Data(contentsOf: URL(fileURLWithPath: tor.torrc + ".annex-tor-helper.bak")) == Data(original))
        // The socket directory belongs to the uid, with u+rwx (git-annex's prepHiddenServiceSocketDir).
        let attrs = try FileManager.default.attributesOfItem(atPath: parentDirectory(socket))
        #expect((attrs[.ownerAccountID] as? NSNumber)?.intValue == 1000)
        #expect(((attrs[.posixPermissions] as? NSNumber)?.intValue ?? 0) & 0o700 == 0o700)
        #expect(tor.isRunning)

        // Adding again changes nothing and reports the same service.
        let again = try tor.helper(["add-hidden-service", "--uid", Self.uid, "--repo-uuid", Self.uuid])
        let againJSON = try again.object()
        #expect(again.status == 0 && againJSON["changed"] as? Bool == false, "\(again)")
        #expect(againJSON["onion"] as? String == json["onion"] as? String && againJSON["port"] as? Int == 4242)

        // Another port for the same service is a conflict.
        let otherPort = try tor.helper(["add-hidden-service", "--uid", Self.uid, "--repo-uuid", Self.uuid, "--port", "4243"])
        #expect(try otherPort.status == 9 && otherPort.object()["reason"] as? String == "conflict", "\(otherPort)")

        let remove = try tor.helper(["remove-hidden-service", "--uid", Self.uid, "--repo-uuid", Self.uuid])
        let removeJSON = try remove.object()
        #expect(remove.status == 0 && removeJSON["changed"] as? Bool == true, "\(remove)")
        #expect(try tor.torrcBytes() == original)
        // The key stays, so adding the service again restores the same address.
        #expect(removeJSON["hidden_service_dir_kept"] as? Bool == true)
        #expect(tor.isRunning)

        let removeAgain = try tor.helper(["remove-hidden-service", "--uid", Self.uid, "--repo-uuid", Self.uuid])
        #expect(try removeAgain.status == 0 && removeAgain.object()["changed"] as? Bool == false)
    }

    @Test func randomPortIsInGitAnnexRange() throws {
        let tor = try HelperTor()
        defer { tor.stop() }
        let add = try tor.helper(["add-hidden-service", "--uid", Self.uid, "--repo-uuid", Self.uuid])
        #expect(add.status == 0, "\(add)\n\(tor.log)")
        let port = try add.object()["port"] as? Int ?? 0
        #expect((1025...65534).contains(port))
    }

    // MARK: failures leave the torrc byte-identical

    @Test func verificationFailureChangesNothing() throws {
        let tor = try HelperTor()
        defer { tor.stop() }
        // A torrc tor would now reject (edited by hand, not yet reloaded): every edit fails verification.
        try tor.appendToTorrc("NoSuchTorOption 1\n")
        let before = try tor.torrcBytes()
        let add = try tor.helper(["add-hidden-service", "--uid", Self.uid, "--repo-uuid", Self.uuid])
        #expect(add.status == 5, "\(add)")
        let json = try add.object()
        #expect(json["reason"] as? String == "verify_failed")
        #expect((json["error"] as? String ?? "").contains("NoSuchTorOption"))
        #expect(try tor.torrcBytes() == before)
        #expect(!FileManager.default.fileExists(atPath: tor.torrc + ".annex-tor-helper.bak"))
        #expect(try tor.strayTempFiles().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: tor.socketRoot + "/\(Self.uid)_\(Self.uuid)"))
    }

    /// tor --verify-config accepts a HiddenServiceDir whose parent is missing, but tor dies
    /// when it reloads it: the helper checks that itself.
    @Test func missingTorDataRootIsCaughtBeforeTorSeesIt() throws {
        let tor = try HelperTor()
        defer { tor.stop() }
        let before = try tor.torrcBytes()
        let add = try tor.helper(["add-hidden-service", "--uid", Self.uid, "--repo-uuid", Self.uuid,
                                  "--tor-data-root", tor.scratch.path + "/missing"])
        #expect(try add.status == 5 && add.object()["reason"] as? String == "verify_failed", "\(add)")
        #expect(try tor.torrcBytes() == before)
        #expect(tor.isRunning)
    }

    @Test func reloadFailureRollsBack() throws {
        let tor = try HelperTor()
        defer { tor.stop() }
        let before = try tor.torrcBytes()
        let add = try tor.helper(["add-hidden-service", "--uid", Self.uid, "--repo-uuid", Self.uuid,
                                  "--reload-command", "/bin/false"])
        #expect(add.status == 6, "\(add)")
        let json = try add.object()
        #expect(json["reason"] as? String == "reload_failed")
        #expect((json["error"] as? String ?? "").contains("torrc restored"))
        #expect(try tor.torrcBytes() == before)
        #expect(try tor.strayTempFiles().isEmpty)
        // The socket directory the helper made is gone again.
        #expect(!FileManager.default.fileExists(atPath: tor.socketRoot + "/\(Self.uid)_\(Self.uuid)"))
    }

    @Test func hostnameTimeoutRollsBack() throws {
        let tor = try HelperTor()
        defer { tor.stop() }
        let before = try tor.torrcBytes()
        // The "reload" succeeds but tor is never told: no hostname appears.
        let add = try tor.helper(["add-hidden-service", "--uid", Self.uid, "--repo-uuid", Self.uuid,
                                  "--reload-command", "/bin/true", "--timeout", "1"])
        #expect(add.status == 7, "\(add)")
        #expect(try add.object()["reason"] as? String == "timeout")
        #expect(try tor.torrcBytes() == before)
        #expect(tor.isRunning)
    }

    // MARK: bad arguments

    static let badArguments: [[String]] = [
        ["add-hidden-service", "--uid", "abc", "--repo-uuid", uuid],
        ["add-hidden-service", "--uid", "-5", "--repo-uuid", uuid],
        ["add-hidden-service", "--uid", "007", "--repo-uuid", uuid],
        ["add-hidden-service", "--uid", "1000", "--repo-uuid", uuid + "\nHiddenServiceDir /etc"],
        ["add-hidden-service", "--uid", "1000", "--repo-uuid", "0e2c4f4a-1d7e 4b4a-9d3c-2f1e0a9b8c7d"],
        ["add-hidden-service", "--uid", "1000", "--repo-uuid", "0e2c4f4a/1d7e-4b4a-9d3c-2f1e0a9b8c7d"],
        ["add-hidden-service", "--uid", "1000", "--repo-uuid", "../../../etc"],
        ["add-hidden-service", "--uid", "1000", "--repo-uuid", uuid, "--port", "0"],
        ["add-hidden-service", "--uid", "1000", "--repo-uuid", uuid, "--port", "65536"],
        ["add-hidden-service", "--uid", "1000", "--repo-uuid", uuid, "--tor-data-root", "relative/dir"],
        ["add-hidden-service", "--uid", "1000", "--repo-uuid", uuid, "--socket-root", "/tmp/../etc"],
        ["add-hidden-service", "--uid", "1000", "--repo-uuid", uuid, "--frobnicate", "1"],
        ["add-hidden-service", "--uid", "1000", "--repo-uuid", uuid, "--uid", "1001"],
        ["add-hidden-service", "--uid", "1000", "--repo-uuid"],
        ["remove-hidden-service", "--uid", "1000", "--repo-uuid", uuid, "--port", "80"],
        ["enable-control-socket", "--group", "no such group"],
        ["enable-control-socket", "--group", "nosuchgroupxyz"],
        ["delete-everything"],
    ]

    @Test func badArgumentsAreRefusedAndTouchNothing() throws {
        let tor = try HelperTor()
        defer { tor.stop() }
        let before = try tor.torrcBytes()
        for args in Self.badArguments {
            let r = try tor.helper(args)
            #expect(r.status == 2, "\(args): \(r)")
            let json = try r.object()
            #expect(json["ok"] as? Bool == false)
            #expect(["usage", "invalid_argument"].contains(json["reason"] as? String ?? ""), "\(args): \(r)")
            #expect(!(json["error"] as? String ?? "").isEmpty)
            #expect(try tor.torrcBytes() == before, "\(args)")
        }
        // A relative --torrc is refused before anything is read.
        let relative = try tor.helper(["add-hidden-service", "--uid", "1000", "--repo-uuid", Self.uuid, "--torrc", "torrc"])
        #expect(relative.status == 2, "\(relative)")
        #expect(!FileManager.default.fileExists(atPath: tor.torrc + ".annex-tor-helper.bak"))
        #expect(!FileManager.default.fileExists(atPath: tor.socketRoot))
    }

    @Test func helpListsTheExitCodes() throws {
        let r = try Command.run([TestEnvironment.torHelper, "--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("add-hidden-service --uid N --repo-uuid U [--port P]"))
        #expect(r.stdout.contains("7  timed out"))
    }

    // MARK: setuid

    /// A copy of the helper with the setuid bit (mode 4755), and arguments that would add a service.
    func setuidCopy(_ tor: HelperTor) throws -> (path: String, arguments: [String]) {
        let copy = tor.scratch.path + "/bin/annex-tor-helper"
        try FileManager.default.createDirectory(atPath: tor.scratch.path + "/bin", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: TestEnvironment.torHelper, toPath: copy)
        #expect(chmod(copy, 0o4755) == 0)
        return (copy, ["add-hidden-service", "--uid", Self.uid, "--repo-uuid", Self.uuid] + tor.overrideArguments())
    }

    @Test func setuidCopyRefuses() throws {
        let tor = try HelperTor()
        defer { tor.stop() }
        let before = try tor.torrcBytes()
        let (copy, args) = try setuidCopy(tor)
        // Run by its owner: real and effective ids agree, but the file's setuid bit is refused.
        let byOwner = try Command.run([copy] + args)
        #expect(byOwner.status == 3, "\(byOwner.stdout)")
        #expect((try HelperResult(byOwner).object())["reason"] as? String == "setuid_refused")
        #expect(chmod(copy, 0o2755) == 0)
        #expect(try Command.run([copy] + args).status == 3)
        #expect(try tor.torrcBytes() == before)
    }

    @Test(.enabled(if: getuid() == 0, "running root's setuid copy as nobody needs root (setpriv)"))
    func setuidCopyRunByNobodyRefuses() throws {
        let tor = try HelperTor()
        defer { tor.stop() }
        let before = try tor.torrcBytes()
        let (copy, args) = try setuidCopy(tor)
        // euid 0 != uid 65534 (or, on a nosuid mount, still the file bit).
        #expect(chmod(tor.scratch.path, 0o755) == 0)
        let byNobody = try Command.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", copy] + args)
        #expect(byNobody.status == 3, "\(byNobody.stdout) \(byNobody.stderr)")
        #expect((try HelperResult(byNobody).object())["reason"] as? String == "setuid_refused")
        #expect(try tor.torrcBytes() == before)
    }

    // MARK: control socket

    @Test func enableControlSocket() throws {
        let tor = try HelperTor()
        defer { tor.stop() }
        let before = try tor.torrcBytes()
        let socket = tor.scratch.path + "/ctl/control"
        let group = String(cString: getgrgid(getegid())!.pointee.gr_name)   // tor runs as us

        let enable = try tor.helper(["enable-control-socket", "--group", group, "--control-socket", socket])
        #expect(enable.status == 0, "\(enable)")
        let json = try enable.object()
        #expect(json["changed"] as? Bool == true && json["control_socket"] as? String == socket)
        #expect(json["cookie_file"] as? String == tor.scratch.path + "/ctl/control.authcookie")
        var st = stat()
        #expect(lstat(socket, &st) == 0 && st.st_mode & 0o170000 == 0o140000 && st.st_mode & 0o777 == 0o660)
        #expect(lstat(tor.scratch.path + "/ctl/control.authcookie", &st) == 0 && st.st_mode & 0o777 == 0o640)
        #expect(String(decoding: try tor.torrcBytes(), as: UTF8.self).hasSuffix("""

            ControlSocket \(socket) GroupWritable RelaxDirModeCheck
            ControlSocketsGroupWritable 1
            CookieAuthentication 1
            CookieAuthFileGroupReadable 1
            CookieAuthFile \(tor.scratch.path)/ctl/control.authcookie

            """))
        let again = try tor.helper(["enable-control-socket", "--group", group, "--control-socket", socket])
        #expect(try again.status == 0 && again.object()["changed"] as? Bool == false, "\(again)")
        #expect(tor.isRunning)

        // A group other than tor's: tor would refuse the socket directory and exit on reload.
        let tor2 = try HelperTor()
        defer { tor2.stop() }
        let before2 = try tor2.torrcBytes()
        let other = try tor2.helper(["enable-control-socket", "--group", "daemon", "--control-socket", tor2.scratch.path + "/ctl/c"])
        #expect(other.status == 2, "\(other)")
        #expect(try tor2.torrcBytes() == before2)
        #expect(tor2.isRunning)
        #expect(try tor.torrcBytes().starts(with: before))
    }
}

// MARK: - fixture

/// The helper's exit status and its one JSON object.
struct HelperResult: CustomStringConvertible {
    let status: Int32
    let stdout: String
    let stderr: String

    init(_ output: Command.Output) {
        status = output.status; stdout = output.stdout; stderr = output.stderr
    }

    func object() throws -> [String: Any] {
        let lines = stdout.split(separator: "\n")
        guard lines.count == 1, let obj = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any] else {
            throw HelperTorFailure("expected one JSON object on stdout, got: \(stdout)")
        }
        return obj
    }

    var description: String { "exit \(status): \(stdout)\(stderr.isEmpty ? "" : " stderr: \(stderr)")" }
}

struct HelperTorFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

func parentDirectory(_ path: String) -> String { (path as NSString).deletingLastPathComponent }

/// A tor of our own with a torrc the helper may edit.
final class HelperTor {
    let scratch = Scratch("annexd-torhelper")
    private(set) var process: BackgroundProcess!
    var torrc: String { scratch.path + "/torrc" }
    var defaults: String { scratch.path + "/torrc-defaults" }
    var dataDir: String { scratch.path + "/data" }
    var socketRoot: String { scratch.path + "/sockets" }
    var pidFile: String { scratch.path + "/tor.pid" }

    init() throws {
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
        let config = """
            ## A test torrc: comments and order must survive the helper's edits.
            DataDirectory \(dataDir)
            SocksPort 0
            DisableNetwork 1   # no internet here; tor still writes hostname files
            PidFile \(pidFile)
            Log notice file \(scratch.path)/tor.log

            __OwningControllerProcess \(getpid())

            """
        try Data(config.utf8).write(to: URL(fileURLWithPath: torrc))
        try Data().write(to: URL(fileURLWithPath: defaults))
        // (BackgroundProcess spawns with no signals blocked, or tor would ignore SIGHUP and SIGTERM.)
        process = try BackgroundProcess(["/usr/sbin/tor", "--defaults-torrc", defaults, "-f", torrc, "--quiet"], logPath: nil)
        // tor writes its pid file before it installs its signal handlers, and a SIGHUP in
        // between kills it: wait until it catches SIGHUP.
        let deadline = Date().addingTimeInterval(20)
        while !Self.catchesSIGHUP(process.pid) {
            guard isRunning, Date() < deadline else { throw HelperTorFailure("tor did not start:\n\(log)") }
            usleep(50_000)
        }
    }

    static func catchesSIGHUP(_ pid: Int32) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigCgt:") }),
              let mask = UInt64(line.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) else { return false }
        return mask & 1 != 0
    }

    var log: String { (try? String(contentsOfFile: scratch.path + "/tor.log", encoding: .utf8)) ?? "(no log)" }
    var isRunning: Bool { process.exited == nil }

    func stop() { process.stop() }

    func torrcBytes() throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: torrc))) }

    func appendToTorrc(_ text: String) throws {
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: torrc))
        try h.seekToEnd()
        try h.write(contentsOf: Data(text.utf8))
        try h.close()
    }

    func strayTempFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.hasPrefix(".torrc.annex-tor-helper") }
    }

    /// The test overrides for this tor.
    func overrideArguments() -> [String] {
        ["--torrc", torrc, "--defaults-torrc", defaults, "--tor-data-root", dataDir, "--socket-root", socketRoot,
         "--reload-command", "kill -HUP \(process.pid)", "--timeout", "20"]
    }

    /// Runs the helper with `args` plus every override `args` does not set itself
    /// (enable-control-socket takes no --socket-root).
    func helper(_ args: [String]) throws -> HelperResult {
        var extra: [String] = []
        let overrides = overrideArguments()
        for i in stride(from: 0, to: overrides.count, by: 2) {
            let flag = overrides[i]
            if args.contains(flag) || (flag == "--socket-root" && args.first == "enable-control-socket") { continue }
            extra += [flag, overrides[i + 1]]
        }
        return HelperResult(try Command.run([TestEnvironment.torHelper] + args + extra))
    }
}
