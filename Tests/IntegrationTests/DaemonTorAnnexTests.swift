#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// The whole spine of issue 4 with stock git-annex on the other side: a
/// repository registered with `annex-cli repo add`, a peer address from
/// `annex-cli invite`, linked by `git annex p2p --link`, reached through a
/// SOCKS5 stand-in for tor on 127.0.0.1:9050.
@Suite(.serialized, .timeLimit(minutes: 10)) struct DaemonTorAnnexTests {
    /// A real annexd child (`DaemonProcess`) and a scratch directory for the test's repositories.
    final class Annexd {
        let scratch = Scratch("annexd-d")
        private(set) var process: DaemonProcess
        private let wrapper: [String], extra: [String], env: [String: String]
        var socket: String { process.socketPath }
        var stateDir: String { process.stateDir }

        /// `net`: run inside the onion network's namespace, so its SOCKS stand-in is annexd's tor.
        /// `annex`: the git-annex the daemon runs (first in its PATH).
        init(extra: [String] = [], net: OnionNetwork? = nil, annex: TestEnvironment.GitAnnex? = nil) throws {
            wrapper = net?.namespace?.argv([]) ?? []
            self.extra = extra
            env = annex.map { ["PATH": $0.binDir + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")] } ?? [:]
            process = try DaemonProcess(wrapper: wrapper, extraArguments: extra, env: env, timeout: 15)
        }

        /// Kills the daemon with SIGKILL (no goodbye); `start()` brings it back.
        func kill9() {
            kill(process.pid, SIGKILL)
            _ = process.waitForExit(timeout: 10)
        }

        /// Starts the daemon again on the same state directory and socket.
        func start() throws {
            let old = process
            let new = try DaemonProcess(stateDir: old.stateDir, socketPath: old.socketPath, wrapper: wrapper,
                                        extraArguments: extra, env: env, timeout: 15)
            old.keepsDirectory = true
            new.alsoRemove = [old.dir] + old.alsoRemove
            old.alsoRemove = []
            process = new
        }

        /// annex-cli with this daemon's socket; returns stdout.
        @discardableResult
        func cli(_ args: String, in cwd: String = "/", allowFailure: Bool = false) throws -> String {
            let bin = Posix.dirname(TestEnvironment.annexd) + "/annex-cli"
            return try sh("\(bin) \(args)", in: cwd, env: ["ANNEXD_SOCKET": socket], allowFailure: allowFailure)
        }

        func json(_ args: String, in cwd: String = "/") throws -> JSONValue {
            try JSONValue(parsing: try cli(args + " --json", in: cwd).trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    @Test(arguments: TestEnvironment.gitAnnexVersions)
    func stockGitAnnexThroughAnInvitation(annex: TestEnvironment.GitAnnex) throws {
        let net = try OnionNetwork()
        let daemon = try Annexd()
        let root = daemon.scratch.path
        try sh("""
            git init -q server && cd server && git annex init -q server
            head -c 400000 /dev/urandom > big && printf 'hi\\n' > small && git annex add -q big small && git commit -qm add
            cd .. && git init -q client && cd client && git annex init -q client
            cd .. && git init -q reader && cd reader && git annex init -q reader
            """, in: root, annex: annex)
        let server = root + "/server", client = root + "/client", reader = root + "/reader"
        let info = try daemon.json("repo add \(server)")
        let onion = try #require(info["onion"]?.stringValue), port = try #require(info["port"]?.intValue)
        try net.map("\(onion):\(port)", to: try #require(info["socket"]?.stringValue))
        #expect(info["address"]?.stringValue == "tor-annex::\(onion):\(port)")

        // Read-write peer: everything a tor-annex remote does.
        let address = try #require(try daemon.json("invite --repo \(server) --name laptop")["address"]?.stringValue)
        #expect(address.hasPrefix("tor-annex::\(onion):\(port):") && address.count == "tor-annex::\(onion):\(port):".count + 128)
        try net.run("echo \(address) | git annex p2p --link --name peer", in: client, annex: annex)
        try net.run("git fetch -q peer && git merge -q peer/$(git -C ../server symbolic-ref --short HEAD)", in: client, annex: annex)
        try net.run("git annex get big small", in: client, annex: annex)
        #expect(sameBytes(client + "/big", server + "/big"))
        try net.run("head -c 200000 /dev/urandom > new && git annex add -q new && git commit -qm new && git annex copy --to peer new",
                    in: client, annex: annex)
        let newKey = try sh("git annex lookupkey new", in: client).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!(try sh("git annex contentlocation \(newKey)", in: server, annex: annex, allowFailure: true)).isEmpty)
        try net.run("git annex drop --from peer new", in: client, annex: annex)
        #expect((try sh("git annex contentlocation \(newKey)", in: server, annex: annex, allowFailure: true)).isEmpty)
        try net.run("git push -q peer HEAD:refs/heads/from-laptop", in: client, annex: annex)
        #expect(try sh("git rev-parse -q --verify refs/heads/from-laptop", in: server, allowFailure: true).count >= 40)

        // The daemon told its subscribers what happened.
        let events = try daemon.cli("events --since 0 --json")
        for type in ["repo.added", "peer.invited", "peer.connected", "content.sent", "content.received", "content.removed"] {
            #expect(events.contains("\"type\":\"\(type)\""), "event \(type) missing from:\n\(events)")
        }

        // Read-only peer: can get, cannot store.
        let roAddress = try #require(try daemon.json("invite --repo \(server) --name reader --read-only")["address"]?.stringValue)
        try net.run("echo \(roAddress) | git annex p2p --link --name peer", in: reader, annex: annex)
        try net.run("git fetch -q peer && git merge -q peer/$(git -C ../server symbolic-ref --short HEAD)", in: reader, annex: annex)
        try net.run("git annex get small", in: reader, annex: annex)
        let refused = try net.run("printf x > mine && git annex add -q mine && git commit -qm mine && git annex copy --to peer mine; echo status=$?",
                                  in: reader, annex: annex, allowFailure: true)
        let mineKey = try sh("git annex lookupkey mine", in: reader).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!refused.contains("status=0"), "copy --to a read-only peer must fail:\n\(refused)")
        #expect((try sh("git annex contentlocation \(mineKey)", in: server, annex: annex, allowFailure: true)).isEmpty)

        // Revoked: the laptop's next connection is refused.
        try daemon.cli("peer revoke laptop --repo \(server)")
        let afterRevoke = try net.run("git annex drop --force small && git annex get small", in: client, annex: annex, allowFailure: true)
        let smallContent = (try? String(contentsOfFile: client + "/small", encoding: .utf8)) ?? ""
        #expect(!smallContent.hasPrefix("hi"), "a revoked peer got content:\n\(afterRevoke)")

        // A wrong token never gets in.
        let wrong = "tor-annex::\(onion):\(port):\(AuthToken.generate().value)"
        try net.run("echo \(wrong) | git annex p2p --link --name intruder", in: client, annex: annex, allowFailure: true)
        #expect(try sh("git config remote.intruder.url", in: client, allowFailure: true).isEmpty)
    }

    @Test func wrongTokensAreSlowedDown() throws {
        // A short maximum delay keeps the test quick; the default is 2 s per failure.
        let maxDelay = 0.004
        let daemon = try Annexd(extra: ["--auth-failure-delay", "\(maxDelay)"])
        let root = daemon.scratch.path
        try sh("git init -q r && cd r && git annex init -q r", in: root)
        let info = try daemon.json("repo add \(root)/r")
        let socket = try #require(info["socket"]?.stringValue)
        let good = try #require(try daemon.json("invite --repo \(root)/r")["address"]?.stringValue).split(separator: ":").last.map(String.init)!

        let tries = 1000
        let start = Date()
        var failures = 0
        var conn: FDConnection?
        var fd: Int32 = -1
        for i in 0..<tries {
            if i % 3 == 0 {
                if fd >= 0 { close(fd) }
                fd = try connectUnix(socket)
                conn = FDConnection(readFD: fd, writeFD: fd)
            }
            conn!.send(.auth(uuid: "11111111-2222-3333-4444-555555555555", token: AuthToken.generate().value))
            if try conn!.readLine() == "AUTH-FAILURE" { failures += 1 }
        }
        close(fd)
        let elapsed = Date().timeIntervalSince(start)
        #expect(failures == tries)
        // Each failure waits its turn: at least the delays, however many connections are used.
        #expect(elapsed >= Double(tries) * maxDelay * 0.9, "1000 wrong tokens took only \(elapsed) s")

        // The right token still gets in afterwards.
        let ok = try connectUnix(socket)
        defer { close(ok) }
        let c = FDConnection(readFD: ok, writeFD: ok)
        c.send(.auth(uuid: "11111111-2222-3333-4444-555555555555", token: good))
        #expect(try c.readLine()?.hasPrefix("AUTH-SUCCESS ") == true)
    }

    @Test func emptyOrMalformedTokensNeverMatch() throws {
        let daemon = try Annexd()
        let root = daemon.scratch.path
        try sh("git init -q r && cd r && git annex init -q r", in: root)
        let socket = try #require(try daemon.json("repo add \(root)/r")["socket"]?.stringValue)
        // A blank line in p2pauth (which git-annex would accept as an empty token) must not let anyone in.
        try Posix.makeDirectories(root + "/r/.git/annex/creds")
        try "\n \n".write(toFile: root + "/r/.git/annex/creds/p2pauth", atomically: true, encoding: .utf8)
        for token in ["", " ", "x", String(repeating: "a", count: 127)] {
            let fd = try connectUnix(socket)
            defer { close(fd) }
            let c = FDConnection(readFD: fd, writeFD: fd)
            try Array("AUTH 11111111-2222-3333-4444-555555555555 \(token)\n".utf8).withUnsafeBytes { try c.sendRaw($0) }
            let reply = try c.readLine()
            #expect(reply == "AUTH-FAILURE" || reply?.hasPrefix("ERROR") == true, "token \"\(token)\" got \(reply ?? "EOF")")
        }
    }
}

func connectUnix(_ path: String) throws -> Int32 { try UnixSocket.connect(path) }
