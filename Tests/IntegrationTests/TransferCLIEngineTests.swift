#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import Shared

/// annex-cli get, copy, drop and transfers, run for real against annexd's transfer engine and
/// a peer (another annexd, through the SOCKS stand-in): they wait for their transfers, say how
/// each went (plain lines, JSON lines, or progress lines on a terminal) and exit accordingly.
@Suite(.serialized, .timeLimit(minutes: 10)) struct TransferCLIEngineTests {
    /// annex-cli on the fixture's client daemon, in `cwd` (default: the client repository).
    func cli(_ f: TransferFixture, _ args: String..., cwd: String? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        try f.daemon.process.annexCLI(args, cwd: cwd ?? f.client, timeout: 60)
    }

    @Test func getAndCopyWaitAndSayHowEachWent() throws {
        let f = try TransferFixture(files: ["big": 3_000_000, "small": 10])
        try FileManager.default.createDirectory(atPath: f.client + "/sub", withIntermediateDirectories: true)
        // From a subdirectory: paths are relative to it, as with git-annex.
        let got = try cli(f, "get", "../big", "../small", cwd: f.client + "/sub")
        #expect(got.status == 0, "\(got)")
        #expect(got.stdout.contains("get big from peer: done (2.9 MiB)\n"), "\(got.stdout)")
        #expect(got.stdout.contains("get small from peer: done (10 B)\n"), "\(got.stdout)")
        #expect(got.stdout.hasSuffix("2 done (2.9 MiB)\n"), "\(got.stdout)")
        #expect(!got.stdout.contains("\u{1B}"), "no terminal codes when stdout is not a terminal")
        #expect(got.stderr.isEmpty, "\(got.stderr)")
        #expect(sameBytes(f.client + "/big", f.server + "/big"))

        // A copy with --json: each event's params as a line, then the summary.
        try sh("head -c 500000 /dev/urandom > new && git annex add -q new && git commit -qm new", in: f.client, annex: f.annex)
        let put = try cli(f, "copy", "--to", "peer", "--json", "new")
        #expect(put.status == 0, "\(put)")
        let lines = try put.stdout.split(separator: "\n").map { try JSONValue(parsing: String($0)) }
        let summary = try #require(lines.last?["summary"], "\(put.stdout)")
        #expect(summary["ok"] == true && summary["done"] == 1 && summary["failed"] == 0, "\(summary)")
        #expect(summary["transfers"]?[0]?["file"]?.stringValue == "new")
        let types = lines.dropLast().compactMap { $0["type"]?.stringValue }
        #expect(types.count == lines.count - 1 && types.allSatisfy { $0.hasPrefix("transfer.") }, "\(types)")
        #expect(types.last == "transfer.finished", "\(types)")
        #expect(try f.whereis(try f.key("new", in: f.client), in: f.client).contains(f.serverUUID))

        // The list has them, done.
        let list = try cli(f, "transfers")
        #expect(list.status == 0, "\(list)")
        #expect(list.stdout.hasPrefix("ID"), "\(list.stdout)")
        for file in ["big", "small", "new"] {
            #expect(list.stdout.split(separator: "\n").contains { $0.contains(" done ") && $0.contains(" \(file) ") }, "\(file): \(list.stdout)")
        }
    }

    @Test func aGetThatFailsExitsOneWithTheReason() throws {
        let f = try TransferFixture(files: ["a": 10])
        // Content nobody has: added in the client, then dropped there without checking.
        try sh("head -c 1000 /dev/urandom > lost && git annex add -q lost && git commit -qm lost && git annex drop -q --force lost",
               in: f.client, annex: f.annex)
        let r = try cli(f, "get", "lost", "a")
        #expect(r.status == 1, "\(r)")
        #expect(r.stdout.contains("get a from peer: done (10 B)"), "\(r.stdout)")
        #expect(r.stderr.hasPrefix("1 done (10 B), 1 failed\n  get lost from peer: failed: "), "\(r.stderr)")
        #expect(r.stderr.hasSuffix("(not_on_peer)\n"), "\(r.stderr)")

        let json = try cli(f, "get", "--json", "lost")
        #expect(json.status == 1)
        let last = try JSONValue(parsing: String(json.stdout.split(separator: "\n").last ?? ""))
        #expect(last["summary"]?["ok"] == false, "\(json.stdout)")
        #expect(last["summary"]?["transfers"]?[0]?["error"]?["code"]?.stringValue == "not_on_peer", "\(json.stdout)")

        // A path that is not annexed: the daemon's refusal, as a clear error.
        let refused = try cli(f, "get", "nope", "--json")
        #expect(refused.status == 1)
        #expect(try JSONValue(parsing: refused.stdout.trimmingCharacters(in: .newlines))["error"]?["data"]?["reason"]?.stringValue
                == "not_annexed", "\(refused)")
    }

    @Test func dropSaysWhatBecameOfEachFile() throws {
        let f = try TransferFixture(files: ["a": 1000])
        #expect(try cli(f, "get", "a").status == 0)
        let dropped = try cli(f, "drop", "a")
        #expect(dropped.status == 0, "\(dropped)")
        #expect(dropped.stdout == "drop a: ok\n")
        #expect(try sh("git annex find a", in: f.client, annex: f.annex).isEmpty, "the content is gone here")
        // Now the peer holds the only copy: dropping it there is refused.
        let unsafe = try cli(f, "drop", "--from", "peer", "a")
        #expect(unsafe.status == 1, "\(unsafe)")
        #expect(unsafe.stdout.hasPrefix("drop a from peer: failed: ") && unsafe.stdout.hasSuffix("(unsafe_drop)\n"), "\(unsafe.stdout)")
    }

    @Test func onATerminalProgressIsRedrawnInPlace() throws {
        let f = try TransferFixture(files: ["big": 3_000_000])
        // Slow enough for a progress event or two (they come at most once a second).
        _ = try f.daemon.process.call("settings.set", ["download_limit": .int(1 << 20)])
        let r = try PseudoTerminal.run([DaemonProcess.annexCLIPath, "get", "big"], env: ["ANNEXD_SOCKET": f.daemon.socket],
                                       cwd: f.client, columns: 100, timeout: 60)
        #expect(r.status == 0, "\(r.output)")
        // The live area is moved over and cleared before each frame; what stays is the done line and the summary.
        #expect(r.output.contains("get big  queued\r\n") || r.output.contains("get big  started"), "\(r.output.debugDescription)")
        #expect(r.output.contains("\r\u{1B}[1A\u{1B}[J"), "\(r.output.debugDescription)")
        // A bar with bytes, rate and ETA, e.g. `get big  [======>    ]  34%  1.0 MiB/2.9 MiB  1.0 MiB/s  ETA 2s`.
        #expect(r.output.range(of: #"get big  \[=*>? *\] +\d+%  [\d.]+ [KM]iB/2\.9 MiB  [\d.]+ [KM]iB/s  ETA \d+s"#,
                                                                   options: .regularExpression) != nil, "\(r.output.debugDescription)")
        #expect(r.output.contains("get big from peer: done (2.9 MiB)\r\n"), "\(r.output.debugDescription)")
        #expect(r.output.hasSuffix("1 done (2.9 MiB)\r\n"), "\(r.output.debugDescription)")
        #expect(sameBytes(f.client + "/big", f.server + "/big"))
    }

    @Test func pauseResumeCancelWhileAGetWaitsAndTransfersFollows() throws {
        let f = try TransferFixture(files: ["big": 6_000_000])
        _ = try f.daemon.process.call("settings.set", ["download_limit": .int(1 << 20)])
        let env = ["ANNEXD_SOCKET": f.daemon.socket]
        // `transfers --follow` and a waiting `get`, both in the background, output to files.
        let follower = try DaemonProcess.spawn([DaemonProcess.annexCLIPath, "transfers", "--follow"], env: env, cwd: f.client,
                                               stdinPath: nil, outputPath: f.root + "/follow.out")
        defer { kill(follower, SIGKILL); _ = DaemonProcess.waitForExit(pid: follower, timeout: 5) }
        let getter = try DaemonProcess.spawn([DaemonProcess.annexCLIPath, "get", "big"], env: env, cwd: f.client,
                                             stdinPath: nil, outputPath: f.root + "/get.out", errorPath: f.root + "/get.err")
        defer { kill(getter, SIGKILL); _ = DaemonProcess.waitForExit(pid: getter, timeout: 5) }
        func waitFor(_ state: String) throws -> JSONValue {
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                let list = try f.daemon.process.call("transfer.list", ["repo": .string(f.client)])
                if let t = list["transfers"]?.arrayValue?.first(where: { $0["state"]?.stringValue == state }) { return t }
                usleep(50_000)
            }
            throw DaemonProcess.Failure(description: "no transfer became \(state)")
        }
        let id = try #require(try waitFor("active")["id"]?.stringValue)

        let paused = try cli(f, "pause", id)
        #expect(paused.status == 0, "\(paused)")
        #expect(paused.stdout.hasPrefix("paused 1 transfer:\n  get big from peer: paused"), "\(paused.stdout)")
        #expect(paused.stdout.hasSuffix("  [\(id)]\n"), "\(paused.stdout)")
        let listed = try cli(f, "transfers", "--repo", f.client)
        #expect(listed.stdout.contains("\(id)  paused "), "\(listed.stdout)")
        // Resumed at once, while the paused attempt may still be stopping: it starts again after it.
        #expect(try cli(f, "resume", "--all").stdout.hasPrefix("resumed 1 transfer:"))
        _ = try waitFor("active")
        let canceled = try cli(f, "cancel", "--all", "--repo", f.client, "--json")
        #expect(canceled.status == 0)
        #expect(try JSONValue(parsing: canceled.stdout.trimmingCharacters(in: .newlines))["transfers"]?[0]?["state"] == "canceled",
                "\(canceled.stdout)")
        #expect(try cli(f, "cancel", "--all").stdout == "no transfer was canceled\n")

        // The waiting get saw it all and ends with 1: not done.
        let status = DaemonProcess.waitForExit(pid: getter, timeout: 20)
        let out = (try? String(contentsOfFile: f.root + "/get.out", encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: f.root + "/get.err", encoding: .utf8)) ?? ""
        #expect(status == 1, "get: \(out)\n\(err)")
        #expect(out.contains("get big from peer: paused") && out.contains("get big from peer: canceled\n"), "\(out)")
        #expect(err == "0 done, 1 canceled\n  get big from peer: canceled\n", "\(err)")
        // So did the follower, which goes on.
        usleep(300_000)
        let followed = (try? String(contentsOfFile: f.root + "/follow.out", encoding: .utf8)) ?? ""
        for line in ["get big from peer: queued", "get big from peer: started", "get big from peer: paused", "get big from peer: canceled"] {
            #expect(followed.contains(line), "\(line): \(followed)")
        }
        #expect(DaemonProcess.waitForExit(pid: follower, timeout: 0) == nil, "transfers --follow keeps following")
    }

    @Test func noWaitReturnsAtOnceAndAStoppingDaemonEndsTheWait() throws {
        let f = try TransferFixture(files: ["big": 6_000_000])
        _ = try f.daemon.process.call("settings.set", ["download_limit": .int(1 << 20)])
        let queued = try cli(f, "get", "--no-wait", "big")
        #expect(queued.status == 0, "\(queued)")
        #expect(queued.stdout.hasPrefix("get big from peer: queued  [t"), "\(queued.stdout)")
        // A get waiting for it sees the daemon stop, says so, and fails.
        let getter = try DaemonProcess.spawn([DaemonProcess.annexCLIPath, "get", "big"], env: ["ANNEXD_SOCKET": f.daemon.socket],
                                             cwd: f.client, stdinPath: nil, outputPath: f.root + "/get.out", errorPath: f.root + "/get.err")
        defer { kill(getter, SIGKILL); _ = DaemonProcess.waitForExit(pid: getter, timeout: 5) }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, !((try? String(contentsOfFile: f.root + "/get.out", encoding: .utf8)) ?? "").contains("get big") {
            usleep(50_000)
        }
        #expect(f.daemon.process.terminate() == 0, "\(f.daemon.process.log)")
        let status = DaemonProcess.waitForExit(pid: getter, timeout: 20)
        let err = (try? String(contentsOfFile: f.root + "/get.err", encoding: .utf8)) ?? ""
        #expect(status == 1)
        #expect(err == "annex-cli: annexd is stopping; unfinished transfers go on when it starts again: see `annex-cli transfers`\n", "\(err)")
    }
}
