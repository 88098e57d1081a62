#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
import Shared

/// Bad input on the RPC socket of a real annexd: each case gets its error, the daemon keeps
/// serving (a fresh connection's `daemon.status` still answers) and its memory stays bounded.
/// Also the daemon's life cycle as a user sees it: a second daemon refused, SIGTERM, and
/// annex-cli with no daemon.
@Suite(.timeLimit(minutes: 10)) struct RPCHardeningTests {
    /// Resident memory the daemon may never exceed, and may not grow by in one case.
    static let maxResident = 100 << 20
    static let maxGrowth = 32 << 20

    static let isRoot = getuid() == 0
    static let haveSetprivAndSocat = ["/usr/bin/setpriv", "/usr/bin/socat"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }

    // MARK: Helpers

    /// A fresh connection gets `daemon.status` from the same daemon.
    func expectServing(_ d: DaemonProcess, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let status = try d.call("daemon.status")
        #expect(status["pid"]?.intValue == Int64(d.pid), "daemon.status after the bad input: \(status)", sourceLocation: sourceLocation)
        #expect(d.isRunning, "annexd exited:\n\(d.log)", sourceLocation: sourceLocation)
    }

    /// The daemon's memory is under `maxResident` and grew by less than `maxGrowth` since `before`.
    func expectBoundedMemory(_ d: DaemonProcess, before: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let now = try d.residentBytes()
        guard TestEnvironment.checksResidentSize else { return }
        #expect(now < Self.maxResident, "annexd uses \(now >> 20) MiB", sourceLocation: sourceLocation)
        #expect(now - before < Self.maxGrowth, "annexd grew from \(before >> 20) MiB to \(now >> 20) MiB",
                sourceLocation: sourceLocation)
    }

    /// The error object of a response line, checked to be a JSON-RPC 2.0 error response.
    func error(of response: JSONValue?, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSONValue {
        let r = try #require(response, "no response (connection closed)", sourceLocation: sourceLocation)
        #expect(r["jsonrpc"] == "2.0", sourceLocation: sourceLocation)
        #expect(r["result"] == nil, sourceLocation: sourceLocation)
        return try #require(r["error"], "not an error response: \(r)", sourceLocation: sourceLocation)
    }

    /// Sends one raw line on a fresh connection and returns the error it gets; the same
    /// connection must then still answer a good request (the framing was intact).
    func errorForLine(_ d: DaemonProcess, _ line: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSONValue {
        let c = try d.connect()
        try c.send(line)
        let e = try error(of: try c.readJSON(), sourceLocation: sourceLocation)
        let after = try c.request("daemon.status")
        #expect(after["result"]?["pid"]?.intValue == Int64(d.pid), "same connection after the error: \(after)",
                sourceLocation: sourceLocation)
        return e
    }

    // MARK: Bad input

    @Test func nonJSONIsAParseError() throws {
        let d = try DaemonProcess()
        let before = try d.residentBytes()
        for line in ["this is not json", "{\"jsonrpc\":\"2.0\",\"id\":1,", "\u{7f}\u{1}garbage"] {
            let e = try errorForLine(d, line)
            #expect(e["code"] == -32700, "\(line): \(e)")
            let reason = try #require(e["data"]?["reason"]?.stringValue, "\(line): no data.reason in \(e)")
            #expect(["invalid_json", "invalid_utf8"].contains(reason), "\(line): \(e)")
        }
        // Not UTF-8 at all.
        let c = try d.connect()
        try c.sendRaw(Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"".utf8) + [0xff, 0xfe] + Array("\"}\n".utf8))
        let e = try error(of: try c.readJSON())
        #expect(e["code"] == -32700)
        #expect(e["data"]?["reason"] == "invalid_utf8", "\(e)")
        try expectServing(d)
        try expectBoundedMemory(d, before: before)
    }

    @Test func duplicateKeysAreAParseError() throws {
        let d = try DaemonProcess()
        let before = try d.residentBytes()
        for line in [#"{"jsonrpc":"2.0","id":1,"method":"daemon.status","method":"daemon.shutdown"}"#,
                     #"{"jsonrpc":"2.0","id":2,"method":"repo.add","params":{"path":"/a","path":"/b"}}"#] {
            let e = try errorForLine(d, line)
            #expect(e["code"] == -32700, "\(e)")
            #expect(e["data"]?["reason"] == "duplicate_key", "\(e)")
        }
        try expectServing(d)
        try expectBoundedMemory(d, before: before)
    }

    /// A 100 MiB line, streamed without a newline: refused as too large once it passes the
    /// 1 MiB limit, without buffering it, and the connection is closed.
    @Test func hundredMiBLineIsRefusedWithoutBufferingIt() throws {
        let d = try DaemonProcess()
        let before = try d.residentBytes()
        let c = try d.connect()
        let total = 100 << 20
        var chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20)
        let head = Array(#"{"jsonrpc":"2.0","id":1,"method":"daemon.status","params":{"x":""#.utf8)
        chunk.replaceSubrange(0..<head.count, with: head)
        var sent = 0
        var cutOff = false
        do {
            while sent < total {
                try c.sendRaw(chunk)
                sent += chunk.count
                if sent == chunk.count { chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20) }
            }
            try c.send("\"}}")
        } catch {
            cutOff = true  // annexd closed the connection (EPIPE/ECONNRESET): expected
        }
        #expect(cutOff, "annexd read all \(total >> 20) MiB of one line without closing the connection")
        #expect(sent < 8 << 20, "annexd accepted \(sent >> 20) MiB of one line before closing")
        let e = try error(of: try c.readJSON())
        #expect(e["code"] == -32700, "\(e)")
        #expect(e["data"]?["reason"] == "too_large", "\(e)")
        #expect(try c.closesWithoutMore(), "the connection stays open after a too large line")
        try expectServing(d)
        try expectBoundedMemory(d, before: before)
    }

    @Test func wrongParamTypesNameTheField() throws {
        let d = try DaemonProcess()
        let before = try d.residentBytes()
        let e = try errorForLine(d, #"{"jsonrpc":"2.0","id":7,"method":"repo.add","params":{"path":5}}"#)
        #expect(e["code"] == -32602, "\(e)")
        #expect(e["message"]?.stringValue?.contains("params.path") == true, "message does not name params.path: \(e)")
        #expect(e["data"]?["reason"] == "invalid_params")
        #expect(e["data"]?["field"] == "params.path")
        // Positional params, an unknown member, a missing member: each named too.
        let positional = try errorForLine(d, #"{"jsonrpc":"2.0","id":8,"method":"repo.add","params":["/x"]}"#)
        #expect(positional["code"] == -32602, "\(positional)")
        let unknown = try errorForLine(d, #"{"jsonrpc":"2.0","id":9,"method":"repo.add","params":{"path":"/x","colour":1}}"#)
        #expect(unknown["code"] == -32602)
        #expect(unknown["message"]?.stringValue?.contains("params.colour") == true, "\(unknown)")
        let missing = try errorForLine(d, #"{"jsonrpc":"2.0","id":10,"method":"repo.add","params":{}}"#)
        #expect(missing["code"] == -32602)
        #expect(missing["message"]?.stringValue?.contains("params.path") == true, "\(missing)")
        try expectServing(d)
        try expectBoundedMemory(d, before: before)
    }

    @Test func unknownMethodIsMethodNotFound() throws {
        let d = try DaemonProcess()
        let before = try d.residentBytes()
        let c = try d.connect()
        let r = try c.request("no.such.method")
        let e = try error(of: r)
        #expect(r["id"] == 1)
        #expect(e["code"] == -32601, "\(e)")
        #expect(e["data"]?["reason"] == "method_not_found")
        #expect(e["message"]?.stringValue?.contains("no.such.method") == true)
        // A notification for an unknown method gets no answer at all; the next request does.
        try c.send(#"{"jsonrpc":"2.0","method":"no.such.method"}"#)
        let next = try c.request("daemon.status")
        #expect(next["id"] == 2 && next["result"] != nil, "\(next)")
        try expectServing(d)
        try expectBoundedMemory(d, before: before)
    }

    @Test func batchOf10kIsOneBatchTooLargeError() throws {
        let d = try DaemonProcess()
        let before = try d.residentBytes()
        func batch(_ n: Int) -> String {
            "[" + (1...n).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"daemon.status"}"# }.joined(separator: ",") + "]"
        }
        let c = try d.connect()
        try c.send(batch(10_000))
        let reply = try #require(try c.readJSON())
        #expect(reply.arrayValue == nil, "a batch of 10k was answered as a batch")
        let e = try error(of: reply)
        #expect(reply["id"] == .null)
        #expect(e["code"] == -32600, "\(e)")
        #expect(e["data"]?["reason"] == "batch_too_large", "\(e)")
        #expect(e["data"]?["limit"] == 1000)
        #expect(e["data"]?["count"] == 10_000)
        // The limit itself is fine: 1000 requests, 1000 answers, on the same connection.
        try c.send(batch(1000))
        let answers = try #require(try c.readJSON()?.arrayValue, "a batch of 1000 was not answered with an array")
        #expect(answers.count == 1000)
        #expect(answers.allSatisfy { $0["result"]?["pid"]?.intValue == Int64(d.pid) })
        #expect(Set(answers.compactMap { $0["id"]?.intValue }) == Set((1...1000).map(Int64.init)))
        try expectServing(d)
        try expectBoundedMemory(d, before: before)
    }

    /// A client of another uid cannot use the daemon: with the socket as annexd makes it (0600
    /// in a 0700 dir) it cannot even connect; with both opened up to everyone it connects, and
    /// annexd refuses it itself (SO_PEERCRED) with reason wrong_uid.
    @Test(.enabled(if: RPCHardeningTests.isRoot,
                   "needs root to run a client as another uid (setpriv --reuid 65534 needs CAP_SETUID)"),
          .enabled(if: RPCHardeningTests.haveSetprivAndSocat, "needs /usr/bin/setpriv and /usr/bin/socat"))
    func clientOfAnotherUIDIsRefused() throws {
        let d = try DaemonProcess()
        let before = try d.residentBytes()
        // socat only reads (-u): annexd refuses on connection, before any request.
        func asNobody() throws -> (status: Int32, stdout: String, stderr: String) {
            try DaemonProcess.run(["/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                                   "/usr/bin/socat", "-u", "-t", "5", "UNIX-CONNECT:" + d.socketPath, "STDOUT"])
        }
        var st = stat()
        #expect(stat(d.socketPath, &st) == 0 && st.st_mode & 0o777 == 0o600, "socket mode \(String(st.st_mode & 0o777, radix: 8))")
        #expect(stat(d.dir, &st) == 0 && st.st_mode & 0o077 == 0, "socket dir mode \(String(st.st_mode & 0o777, radix: 8))")

        // As annexd made it: no way in for uid 65534.
        let closed = try asNobody()
        #expect(!closed.stdout.contains("\"result\""), "uid 65534 got an answer: \(closed.stdout)")
        #expect(closed.stderr.contains("Permission denied") || closed.stdout.contains("wrong_uid"),
                "uid 65534: status \(closed.status), stdout \(closed.stdout), stderr \(closed.stderr)")

        // Opened up: the connection reaches annexd, which refuses the caller by its uid.
        chmod(d.dir, 0o777)
        chmod(d.socketPath, 0o777)
        defer {
            chmod(d.socketPath, 0o600)
            chmod(d.dir, 0o700)
        }
        let open = try asNobody()
        #expect(!open.stdout.contains("\"result\""), "uid 65534 got an answer: \(open.stdout)")
        let line = try #require(open.stdout.split(separator: "\n").first, "no reply to uid 65534 (stderr: \(open.stderr))")
        let e = try error(of: try JSONValue(parsing: String(line)))
        #expect(e["code"] == -32004, "\(e)")
        #expect(e["data"]?["reason"] == "wrong_uid", "\(e)")
        #expect(e["message"]?.stringValue?.contains("uid 65534") == true, "\(e)")
        // A client that writes its request at once still reads the refusal (no reset).
        let writing = try DaemonProcess.run(["/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                                             "/usr/bin/socat", "-t", "5", "STDIO", "UNIX-CONNECT:" + d.socketPath],
                                            stdin: String(repeating: "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.status\"}\n", count: 2000))
        #expect(writing.stdout.contains("wrong_uid") && !writing.stdout.contains("\"result\""),
                "status \(writing.status), stdout \(writing.stdout.prefix(300)), stderr \(writing.stderr)")
        try expectServing(d)
        try expectBoundedMemory(d, before: before)
    }

    /// Raises RLIMIT_NOFILE (the daemon started afterwards inherits it) so 2000 connections fit
    /// on both ends; true when there are enough descriptors.
    static let enoughDescriptors: Bool = {
        let wanted: rlim_t = 8192
        var lim = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
        if lim.rlim_cur < wanted {
            if lim.rlim_max < wanted && isRoot { lim.rlim_max = wanted }
            lim.rlim_cur = min(wanted, lim.rlim_max)
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
        }
        return lim.rlim_cur >= 4500
    }()

    /// 2000 connections at once: the first 1024 are served, the rest are told
    /// too_many_connections and closed; once all close, a new client is served again.
    @Test(.enabled(if: RPCHardeningTests.enoughDescriptors,
                   "2000 connections need about 4500 descriptors, and RLIMIT_NOFILE's hard limit is lower (raising it needs root)"))
    func twoThousandConnectionsAtOnce() throws {
        let d = try DaemonProcess()
        let before = try d.residentBytes()
        let count = 2000, maxConnections = 1024
        var conns: [RPCTestConnection] = []
        conns.reserveCapacity(count)
        for _ in 0..<count { conns.append(try d.connect()) }

        // Collect the connections annexd answers without being asked: those it refuses.
        var refused = Set<Int>()
        let deadline = Date().addingTimeInterval(10)
        var settleUntil: Date?
        while Date() < deadline {
            var fds = conns.enumerated().filter { !refused.contains($0.offset) }
                .map { pollfd(fd: $0.element.fd, events: Int16(POLLIN), revents: 0) }
            let indices = conns.indices.filter { !refused.contains($0) }
            let r = poll(&fds, nfds_t(fds.count), 50)
            if r > 0 {
                for (i, p) in zip(indices, fds) where p.revents != 0 { refused.insert(i) }
            }
            if refused.count >= count - maxConnections {
                // A few more may come if annexd had not yet seen the readiness probe close.
                if settleUntil == nil { settleUntil = Date().addingTimeInterval(0.3) }
                if Date() >= settleUntil! { break }
            }
        }
        #expect(refused.count >= count - maxConnections && refused.count <= count - maxConnections + 1,
                "\(refused.count) connections refused, expected \(count - maxConnections)")
        for i in refused.sorted() {
            let reply = try conns[i].readJSON()
            #expect(reply != nil, "connection \(i) of \(count) closed without a reply (reset: \(conns[i].resetSeen))")
            guard reply != nil else { continue }
            let e = try error(of: reply)
            #expect(e["code"] == -32006, "\(e)")
            #expect(e["data"]?["reason"] == "too_many_connections", "\(e)")
            #expect(try conns[i].closesWithoutMore(), "a refused connection was left open")
        }
        let rssFull = try d.residentBytes()
        #expect(!TestEnvironment.checksResidentSize || rssFull < Self.maxResident, "annexd uses \(rssFull >> 20) MiB with \(maxConnections) connections open")

        // Every admitted connection is served.
        let admitted = conns.indices.filter { !refused.contains($0) }
        for i in admitted { try conns[i].send(#"{"jsonrpc":"2.0","id":1,"method":"daemon.status"}"#) }
        var served = 0
        for i in admitted {
            if let r = try conns[i].readJSON(), r["result"]?["pid"]?.intValue == Int64(d.pid) { served += 1 }
        }
        #expect(served == admitted.count, "\(served) of \(admitted.count) admitted connections answered")

        // All close; annexd notices (asynchronously) and serves new clients again.
        conns.removeAll()
        let until = Date().addingTimeInterval(10)
        var status: JSONValue?
        var lastError = ""
        while Date() < until && status == nil {
            do { status = try d.call("daemon.status") } catch {
                lastError = "\(error)"
                usleep(50_000)
            }
        }
        #expect(status?["pid"]?.intValue == Int64(d.pid), "no daemon.status after closing all connections: \(lastError)")

        // The refused connections were not counted: once the first wave is gone (closes are
        // seen asynchronously), there is room for 1024 again, and only for 1024.
        usleep(300_000)
        var wave: [RPCTestConnection] = []
        for _ in 0..<maxConnections { wave.append(try d.connect()) }
        var fds = wave.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
        _ = poll(&fds, nfds_t(fds.count), 300)
        let refusedAgain = fds.filter { $0.revents != 0 }.count
        #expect(refusedAgain == 0, "\(refusedAgain) of a second wave of \(maxConnections) connections refused: refused connections leaked slots")
        let extra = try d.connect()
        let e = try error(of: try extra.readJSON())
        #expect(e["data"]?["reason"] == "too_many_connections", "connection \(maxConnections + 1) of the second wave: \(e)")
        let r = try wave[maxConnections / 2].request("daemon.status")
        #expect(r["result"]?["pid"]?.intValue == Int64(d.pid), "\(r)")
        wave.removeAll()
        let until2 = Date().addingTimeInterval(10)
        status = nil
        while Date() < until2 && status == nil {
            do { status = try d.call("daemon.status") } catch { usleep(50_000) }
        }
        try expectServing(d)
        try expectBoundedMemory(d, before: before)
    }

    // MARK: Life cycle

    @Test func secondDaemonOnTheSameStateDirRefusesToStart() throws {
        let d = try DaemonProcess()
        let other = DaemonProcess.makeScratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: other) }

        let r = try DaemonProcess.run([TestEnvironment.annexd, "--state-dir", d.stateDir, "--socket", other + "/rpc.sock",
                                       "--tor", "none"])
        #expect(r.status == 1, "second annexd exited \(r.status): \(r.stderr)")
        #expect(r.stderr.contains(d.stateDir), "the message does not name the state dir: \(r.stderr)")
        #expect(r.stderr.contains("already running"), "\(r.stderr)")
        #expect(r.stderr.contains("pid \(d.pid)"), "\(r.stderr)")
        #expect(!Posix.exists(other + "/rpc.sock"))

        // Another state dir but the same socket: refused too, and the first keeps its socket.
        let r2 = try DaemonProcess.run([TestEnvironment.annexd, "--state-dir", other + "/state", "--socket", d.socketPath,
                                        "--tor", "none"])
        #expect(r2.status == 1, "annexd on a socket in use exited \(r2.status): \(r2.stderr)")
        #expect(r2.stderr.contains(d.socketPath), "\(r2.stderr)")
        try expectServing(d)
    }

    @Test func sigtermExitsZeroAndRemovesTheSocket() throws {
        let d = try DaemonProcess()
        #expect(Posix.exists(d.socketPath))
        let status = d.terminate()
        #expect(status == 0, "annexd exited \(status.map(String.init) ?? "not at all") on SIGTERM:\n\(d.log)")
        #expect(!Posix.exists(d.socketPath), "the socket is left behind")
        // Nothing listens any more: annex-cli says so.
        let r = try d.annexCLI("status")
        #expect(r.status == 1)
        #expect(r.stderr.contains("not running"), "\(r.stderr)")
    }

    @Test func annexCLIWithoutADaemonSaysHowToStartIt() throws {
        let dir = DaemonProcess.makeScratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let env = ["ANNEXD_SOCKET": dir + "/rpc.sock"]

        let text = try DaemonProcess.run([DaemonProcess.annexCLIPath, "status"], env: env)
        #expect(text.status == 1)
        #expect(text.stderr.contains("annexd is not running"), "\(text.stderr)")
        #expect(text.stderr.contains("Start it with `annexd`"), "no hint how to start it: \(text.stderr)")
        #expect(text.stderr.contains(dir + "/rpc.sock"), "\(text.stderr)")

        let json = try DaemonProcess.run([DaemonProcess.annexCLIPath, "status", "--json"], env: env)
        #expect(json.status == 1)
        let out = try JSONValue(parsing: json.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        let e = try #require(out["error"], "no error object: \(json.stdout)")
        #expect(e["data"]?["reason"] == "daemon_not_running", "\(out)")
        #expect(e["message"]?.stringValue?.contains("not running") == true)
        #expect(e["code"]?.intValue != nil)

        // With a daemon, the same command works.
        let d = try DaemonProcess()
        let ok = try d.annexCLI("status", "--json")
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(try JSONValue(parsing: ok.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["pid"]?.intValue == Int64(d.pid),
                "\(ok.stdout)")
    }
}
