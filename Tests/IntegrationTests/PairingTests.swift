#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import Testing
@testable import AnnexdKit
@testable import Shared

/// A program run with pipes: lines of its standard output with a deadline, and lines to its
/// standard input. Killed (by pid) if still running when the value goes away.
final class Interactive {
    let child: ChildProcess
    private var buffer: [UInt8] = []
    private(set) var output = ""
    private var exited: Int32?

    init(_ args: [String], env: [String: String] = [:], cwd: String? = nil) throws {
        let prefix = env.isEmpty ? [] : ["env"] + env.map { "\($0.key)=\($0.value)" }
        child = try ChildProcess(prefix + args, cwd: cwd)
    }

    deinit {
        if exited == nil { kill(child.pid, SIGKILL) }
    }

    /// The next line of output, nil at its end; throws after `timeout`.
    func readLine(timeout: Double = 30) throws -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                return line
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw ShellError(description: "no output line within \(timeout) s; so far:\n\(output)") }
            var p = pollfd(fd: child.stdoutFD, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, Int32(min(left, 1) * 1000) + 1) <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { read(child.stdoutFD, $0.baseAddress, $0.count) }
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                if buffer.isEmpty { return nil }
                let rest = String(decoding: buffer, as: UTF8.self)
                buffer = []
                return rest
            }
            buffer += chunk[0..<n]
            output += String(decoding: chunk[0..<n], as: UTF8.self)
        }
    }

    /// Reads lines until one contains `marker`; returns it.
    func waitFor(_ marker: String, timeout: Double = 30) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while let line = try readLine(timeout: max(0.01, deadline.timeIntervalSinceNow)) {
            if line.contains(marker) { return line }
        }
        throw ShellError(description: "the output ended without \(marker.debugDescription):\n\(output)")
    }

    func send(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(child.stdinFD, $0.baseAddress, $0.count) }
    }

    /// Reads the rest of the output and waits for the exit (killed after `timeout`).
    func finish(timeout: Double = 60) -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while (try? readLine(timeout: max(0.01, deadline.timeIntervalSinceNow))) != nil {}
        if Date() > deadline { kill(child.pid, SIGKILL) }
        let status = child.wait()
        exited = status
        return status
    }
}

/// `annex-cli pair` and pair.* against another annexd and against `git annex p2p --pair`
/// (both git-annex versions, which run the Python `wormhole` 0.24 CLI), all through a local
/// mailbox server and transit relay; afterwards each side gets a file from the other through
/// the onion stand-in. And every way pairing can fail leaves no token and no remote behind.
/// Everything runs where lo is the only interface (the onion stand-in in a namespace of its own
/// within that one, as root).
@Suite(.serialized, .timeLimit(minutes: 5),
       .enabled(if: WormholeReference.available, "needs magic-wormhole in .venv (make test creates it)"),
       .enabled(if: NetworkIsolation.onlyLoopback, NetworkIsolation.why))
struct PairingTests {
    typealias Annexd = DaemonTorAnnexTests.Annexd
    static var annexCLI: String { Posix.dirname(TestEnvironment.annexd) + "/annex-cli" }

    /// `annex-cli pair --json` for `repo` on `daemon`; its first output line is our code.
    func startCLI(_ daemon: Annexd, repo: String, name: String, code: String? = nil) throws -> (Interactive, String) {
        // Standard error joins standard output (after the first line), so messages can be checked.
        let args = [Self.annexCLI, "pair", "--socket", daemon.socket, "--repo", repo, "--name", name, "--json"]
            + (code.map { ["--code", $0] } ?? [])
        let p = try Interactive(["sh", "-c", "exec " + args.map { "'\($0)'" }.joined(separator: " ") + " 2>&1"])
        let first = try #require(try p.readLine(), "annex-cli pair printed nothing")
        let started = try JSONValue(parsing: first)
        return (p, try #require(started["code"]?.stringValue, "no code in \(first)"))
    }

    /// Every event the daemon kept, as JSON lines (bounded: a hang fails the test).
    func events(_ daemon: Annexd) throws -> String {
        try sh("timeout 10 '\(Self.annexCLI)' events --since 0 --json", in: "/", env: ["ANNEXD_SOCKET": daemon.socket])
    }

    /// creds/p2pauth has no token line, and there is no remote.
    func expectNothingStored(_ repo: String, daemon: Annexd, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let auth = (try? String(contentsOfFile: repo + "/.git/annex/creds/p2pauth", encoding: .utf8)) ?? ""
        #expect(auth.split(separator: "\n").allSatisfy { $0.trimmingCharacters(in: .whitespaces).isEmpty }, "tokens left: \(auth)",
                sourceLocation: sourceLocation)
        #expect(try sh("git remote", in: repo).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, sourceLocation: sourceLocation)
        #expect(try daemon.json("peer list --repo \(repo)")["peers"]?.arrayValue?.isEmpty == true, sourceLocation: sourceLocation)
    }

    func makeRepo(_ root: String, _ name: String, file: String, annex: TestEnvironment.GitAnnex) throws {
        try sh("git init -q \(name) && cd \(name) && git annex init -q \(name) && printf 'from \(name)\\n' > \(file) && git annex add -q \(file) && git commit -qm \(file)",
               in: root, annex: annex)
    }

    @Test func annexdPairsWithAnnexdThenBothTransfer() throws {
        let annex = TestEnvironment.gitAnnexVersions[0]
        let net = try OnionNetwork()
        let servers = try WormholeServers(namespace: net.namespace?.name)
        let a = try Annexd(extra: servers.daemonArguments, net: net), b = try Annexd(extra: servers.daemonArguments, net: net)
        let root = a.scratch.path
        try makeRepo(root, "repoA", file: "fa", annex: annex)
        try makeRepo(root, "repoB", file: "fb", annex: annex)
        for (d, r) in [(a, "repoA"), (b, "repoB")] {
            let info = try d.json("repo add \(root)/\(r)")
            try net.map("\(info["onion"]!.stringValue!):\(info["port"]!.intValue!)", to: info["socket"]!.stringValue!)
        }
        let started = Date()
        let (pa, codeA) = try startCLI(a, repo: root + "/repoA", name: "b")
        let (pb, codeB) = try startCLI(b, repo: root + "/repoB", name: "a", code: codeA)
        pa.send(codeB)
        let statusA = pa.finish(), statusB = pb.finish()
        print("annexd<->annexd pairing took \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
        #expect(statusA == 0, "A: \(pa.output)")
        #expect(statusB == 0, "B: \(pb.output)")
        let uuidB = try sh("git config annex.uuid", in: root + "/repoB").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(pa.output.contains("\"uuid\":\"\(uuidB)\""), "\(pa.output)")
        #expect(try sh("git config remote.b.annex-uuid", in: root + "/repoA").trimmingCharacters(in: .whitespacesAndNewlines) == uuidB)
        let events = try events(a)
        #expect(events.contains("\"pairing\":\""), "\(events)")
        for type in ["pair.code", "pair.progress", "pair.succeeded", "peer.linked"] {
            #expect(events.contains("\"type\":\"\(type)\""), "no \(type) event in \(events)")
        }

        try net.run("git fetch -q b && git merge -q --allow-unrelated-histories -m m b/$(git -C ../repoB symbolic-ref --short HEAD) && git annex get -q fb",
                    in: root + "/repoA", annex: annex)
        #expect(try String(contentsOfFile: root + "/repoA/fb", encoding: .utf8) == "from repoB\n")
        try net.run("git fetch -q a && git merge -q --allow-unrelated-histories -m m a/$(git -C ../repoA symbolic-ref --short HEAD) && git annex get -q fa",
                    in: root + "/repoB", annex: annex)
        #expect(try String(contentsOfFile: root + "/repoB/fa", encoding: .utf8) == "from repoA\n")
    }

    @Test(.enabled(if: getuid() == 0, "serving the git-annex side with stock remotedaemon needs root (a mount namespace to bind-mount /etc/tor/torrc)"),
          arguments: TestEnvironment.gitAnnexVersions)
    func annexCLIPairsWithGitAnnex(annex: TestEnvironment.GitAnnex) throws {
        let net = try OnionNetwork()
        let ns = try #require(net.namespace?.name)
        let servers = try WormholeServers(namespace: ns)
        let a = try Annexd(extra: servers.daemonArguments, net: net)
        let root = a.scratch.path
        try makeRepo(root, "repoA", file: "fa", annex: annex)
        try makeRepo(root, "repoG", file: "fg", annex: annex)
        let infoA = try a.json("repo add \(root)/repoA")
        try net.map("\(infoA["onion"]!.stringValue!):\(infoA["port"]!.intValue!)", to: infoA["socket"]!.stringValue!)

        // The git-annex side: its own (fake) onion address, served by stock remotedaemon.
        let uuidG = try sh("git config annex.uuid", in: root + "/repoG").trimmingCharacters(in: .whitespacesAndNewlines)
        let onionG = OnionNetwork.fakeOnionValid()
        let sock = root + "/gsock/s"
        try Posix.makeDirectories(root + "/gsock")
        try "HiddenServiceDir /var/lib/tor/tor-annex_\(getuid())_\(uuidG)\nHiddenServicePort 1234 unix:\(sock)\n"
            .write(toFile: root + "/torrc", atomically: true, encoding: .utf8)
        try Posix.makeDirectories(root + "/repoG/.git/annex/creds")
        try "tor-annex::\(onionG):1234\n".write(toFile: root + "/repoG/.git/annex/creds/p2paddrs", atomically: true, encoding: .utf8)
        let rd = try ChildProcess(["env", "PATH=\(annex.binDir):/usr/bin:/bin", "unshare", "-m", "sh", "-c",
                                   "mount --bind \(root)/torrc /etc/tor/torrc && cd \(root)/repoG && exec git annex remotedaemon --foreground >/dev/null"],
                                  quietStderr: true)
        defer { rd.closeStdin(); rd.closeStdout(); rd.wait() }
        let deadline = Date().addingTimeInterval(20)
        while !Posix.exists(sock) && Date() < deadline { usleep(50_000) }
        try #require(Posix.exists(sock), "remotedaemon did not listen on \(sock)")
        try net.map("\(onionG):1234", to: sock)

        // git annex p2p --pair runs `wormhole` from PATH, pointed at the local servers.
        var env = servers.environment
        env["PATH"] = "\(annex.binDir):\(WormholeReference.venv)/bin:/usr/bin:/bin"
        env["HOME"] = root
        for k in ["GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"] { env[k] = "annexd test" }
        for k in ["GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"] { env[k] = "test@example.invalid" }
        let started = Date()
        let g = try Interactive(["ip", "netns", "exec", ns, "env"] + env.map { "\($0.key)=\($0.value)" }
                                + ["sh", "-c", "cd \(root)/repoG && exec git annex p2p --pair --name a 2>&1"])
        let codeLine = try g.waitFor("pairing code is:")
        let codeG = try #require(codeLine.split(separator: " ").last.map(String.init))
        let (pa, codeA) = try startCLI(a, repo: root + "/repoA", name: "g", code: codeG)
        g.send(codeA)
        let statusA = pa.finish(timeout: 120)
        let statusG = g.finish(timeout: 120)
        print("annex-cli<->git-annex \(annex) pairing took \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
        #expect(statusA == 0, "annex-cli: \(pa.output)")
        #expect(statusG == 0, "git-annex: \(g.output)")
        #expect(pa.output.contains("\"uuid\":\"\(uuidG)\""), "\(pa.output)")
        let uuidA = try sh("git config annex.uuid", in: root + "/repoA").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try sh("git config remote.a.annex-uuid", in: root + "/repoG").trimmingCharacters(in: .whitespacesAndNewlines) == uuidA)

        // annexd's repository gets from git-annex's through the new remote (branches locally,
        // as git over remotedaemon's relay is not what this is about), and git-annex gets from annexd.
        try net.run("git fetch -q ../repoG && git merge -q --allow-unrelated-histories -m m FETCH_HEAD && git fetch -q ../repoG git-annex:refs/remotes/g/git-annex && git annex get -q --from g fg",
                    in: root + "/repoA", annex: annex)
        #expect(try String(contentsOfFile: root + "/repoA/fg", encoding: .utf8) == "from repoG\n")
        try net.run("git fetch -q a && git merge -q --allow-unrelated-histories -m m a/$(git -C ../repoA symbolic-ref --short HEAD) && git annex get -q --from a fa",
                    in: root + "/repoG", annex: annex)
        #expect(try String(contentsOfFile: root + "/repoG/fa", encoding: .utf8) == "from repoA\n")
    }

    // MARK: Failures: each explained, nothing stored

    /// Two daemons on this namespace's loopback (no onion network needed: nothing gets linked).
    struct Pair {
        let servers: WormholeServers
        let a: Annexd
        let b: Annexd
        var root: String { a.scratch.path }
        var repoA: String { root + "/repoA" }
        var repoB: String { root + "/repoB" }

        init(_ test: PairingTests, mailboxURL: String? = nil) throws {
            servers = try WormholeServers()
            var args = servers.daemonArguments
            if let mailboxURL { args[1] = mailboxURL }
            a = try Annexd(extra: args)
            b = try Annexd(extra: args)
            let annex = TestEnvironment.gitAnnexVersions[0]
            try test.makeRepo(a.scratch.path, "repoA", file: "fa", annex: annex)
            try test.makeRepo(a.scratch.path, "repoB", file: "fb", annex: annex)
            try a.cli("repo add \(a.scratch.path)/repoA")
            try b.cli("repo add \(a.scratch.path)/repoB")
        }
    }

    func rpc(_ daemon: Annexd, _ method: String, _ params: JSONValue, timeout: Double = 30) throws -> JSONValue {
        try RPCTestConnection(path: daemon.socket).request(method, params, timeout: timeout)
    }

    @Test func wrongCodeFailsBothSidesAndStoresNothing() throws {
        let p = try Pair(self)
        let (pa, codeA) = try startCLI(p.a, repo: p.repoA, name: "b")
        let (pb, codeB) = try startCLI(p.b, repo: p.repoB, name: "a", code: codeA)
        let words = codeB.split(separator: "-")
        pa.send("\(words[0])-\(words[1])-\(words[2] == "aardvark" ? "absurd" : "aardvark")")
        #expect(pa.finish() == 1)
        #expect(pb.finish() == 1)
        for out in [pa.output, pb.output] {
            #expect(out.contains("\"reason\":\"wrong_code\""), "\(out)")
            #expect(out.contains("key confirmation failed") && out.contains("code is spent"), "\(out)")
        }
        try expectNothingStored(p.repoA, daemon: p.a)
        try expectNothingStored(p.repoB, daemon: p.b)
        let events = try events(p.a)
        #expect(events.contains("\"type\":\"pair.failed\"") && events.contains("\"reason\":\"wrong_code\""), "\(events)")
    }

    @Test func thirdClientOnTheNameplateIsCrowded() async throws {
        let p = try Pair(self)
        // Fault injection: two raw sides hold nameplate 91 (bind + claim, no key exchange).
        let url = try MailboxURL(p.servers.mailbox.url)
        let claimed = AsyncStream<Void>.makeStream()
        let holders = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for side in ["aaaaaaaaaa", "bbbbbbbbbb"] {
                    group.addTask {
                        try await MailboxWebSocket.withConnection(to: url) { inbound, send in
                            try await send(Array(#"{"type":"bind","appid":"\#(Wormhole.gitAnnexAppID)","side":"\#(side)"}"#.utf8))
                            try await send(Array(#"{"type":"claim","nameplate":"91"}"#.utf8))
                            for try await frame in inbound where String(decoding: frame, as: UTF8.self).contains("\"claimed\"") { break }
                            claimed.continuation.yield()
                            while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(50)) }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        defer { holders.cancel() }
        var it = claimed.stream.makeAsyncIterator()
        _ = await it.next()
        _ = await it.next()
        let started = try rpc(p.a, "pair.start", ["repo": .string(p.repoA), "name": "b"])
        let id = try #require(started["result"]?["id"]?.stringValue, "\(started)")
        let submitted = try rpc(p.a, "pair.submit", ["id": .string(id), "code": "91-adroitness-aardvark"])
        #expect(submitted["error"]?["data"]?["reason"]?.stringValue == "crowded", "\(submitted)")
        #expect(submitted["error"]?["message"]?.stringValue?.contains("third client") == true)
        try expectNothingStored(p.repoA, daemon: p.a)
    }

    @Test func mailboxDownIsExplainedAtOnce() throws {
        let closed = try LocalMailboxServer.freePort()
        let p = try Pair(self, mailboxURL: "ws://127.0.0.1:\(closed)/v1")
        let out = try p.a.cli("pair --repo \(p.repoA) --code 5-a-b --json", allowFailure: true)
        #expect(out.contains("\"reason\":\"mailbox_unreachable\""), "\(out)")
        #expect(out.contains("127.0.0.1:\(closed)") && out.contains("WORMHOLE_RELAY_URL"), "\(out)")
        try expectNothingStored(p.repoA, daemon: p.a)
    }

    @Test func cancelAndTimeoutAndOwnCode() async throws {
        let p = try Pair(self)
        // Cancel while waiting for a peer that never comes.
        let started = try rpc(p.a, "pair.start", ["repo": .string(p.repoA), "name": "b"])
        let id = try #require(started["result"]?["id"]?.stringValue, "\(started)")
        let submitted = Mutex<JSONValue?>(nil)
        let socket = p.a.socket
        let submitter = Thread {
            let r = try? RPCTestConnection(path: socket).request("pair.submit", ["id": .string(id), "code": "77-adroitness-aardvark"], timeout: 30)
            submitted.withLock { $0 = r }
        }
        submitter.start()
        try await Task.sleep(for: .milliseconds(500))
        let cancelled = try rpc(p.a, "pair.cancel", ["id": .string(id)])
        #expect(cancelled["result"] != nil, "\(cancelled)")
        var answer: JSONValue?
        for _ in 0..<100 where answer == nil {
            try await Task.sleep(for: .milliseconds(50))
            answer = submitted.withLock { $0 }
        }
        #expect(answer?["error"]?["data"]?["reason"]?.stringValue == "cancelled", "\(String(describing: answer))")

        // A peer that never comes: the timeout says so.
        let timed = try rpc(p.a, "pair.start", ["repo": .string(p.repoA), "name": "b", "timeout": 2])
        let tid = try #require(timed["result"]?["id"]?.stringValue, "\(timed)")
        let late = try rpc(p.a, "pair.submit", ["id": .string(tid), "code": "78-adroitness-aardvark"])
        #expect(late["error"]?["data"]?["reason"]?.stringValue == "timeout", "\(late)")
        #expect(late["error"]?["message"]?.stringValue?.contains("never came") == true, "\(late)")

        // annex-cli refuses our own code and asks again; at the end of input it cancels.
        let (cli, code) = try startCLI(p.a, repo: p.repoA, name: "b")
        cli.send(code)
        cli.child.closeStdin()
        #expect(cli.finish() == 1)
        #expect(cli.output.contains("Oops -- you entered this repository's pairing code"), "\(cli.output)")
        #expect(cli.output.contains("\"reason\":\"cancelled\""), "\(cli.output)")
        try expectNothingStored(p.repoA, daemon: p.a)
    }

    /// Ctrl-C in `annex-cli pair`, while it waits for the other side's code and while it waits
    /// for the other side: it cancels the pairing in the daemon (pair.failed, reason cancelled;
    /// nothing stored), says so, and exits with status 130.
    @Test(arguments: [nil, "79-adroitness-aardvark"])
    func ctrlCCancelsThePairingInTheDaemon(code: String?) throws {
        let p = try Pair(self)
        let args = [Self.annexCLI, "pair", "--socket", p.a.socket, "--repo", p.repoA, "--name", "b"] + (code.map { ["--code", $0] } ?? [])
        let cli = try Interactive(["sh", "-c", "exec " + args.map { "'\($0)'" }.joined(separator: " ") + " 2>&1"])
        let codeLine = try cli.waitFor("pairing code is:")
        #expect(!codeLine.isEmpty)
        // Without --code: Ctrl-C the moment the code shows (annex-cli is blocked reading the other's).
        if code == nil { kill(cli.child.pid, SIGINT) }
        let pairing = try #require(try events(p.a).split(separator: "\n").lazy.compactMap { try? JSONValue(parsing: String($0)) }
            .first { $0["type"]?.stringValue == "pair.code" }?["pairing"]?.stringValue, "no pair.code event")
        if code != nil {
            // Wait (bounded) until the daemon has the code and waits for the other side.
            let deadline = Date().addingTimeInterval(20)
            var seen = try events(p.a)
            while !seen.contains("\"stage\":\"exchanging\"") {
                try #require(Date() < deadline, "no pair.progress exchanging: \(seen)")
                usleep(50_000)
                seen = try events(p.a)
            }
            kill(cli.child.pid, SIGINT)
        }
        #expect(cli.finish(timeout: 20) == 130, "\(cli.output)")
        #expect(cli.output.contains("annex-cli: interrupted: pairing cancelled, annexd keeps nothing of it"), "\(cli.output)")
        let failed = try events(p.a).split(separator: "\n").compactMap { try? JSONValue(parsing: String($0)) }
            .filter { $0["type"]?.stringValue == "pair.failed" }
        #expect(failed.count == 1 && failed.first?["pairing"]?.stringValue == pairing, "\(failed)")
        #expect(failed.first?["reason"]?.stringValue == "cancelled", "\(failed)")
        let again = try rpc(p.a, "pair.cancel", ["id": .string(pairing)])
        #expect(again["error"]?["data"]?["reason"]?.stringValue != nil, "the pairing is over: \(again)")
        try expectNothingStored(p.repoA, daemon: p.a)
    }
}
