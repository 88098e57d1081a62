#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// `annex-cli tor enable --system --repo R`: annexd runs annex-tor-helper, which
/// adds git annex enable-tor's hidden service to a (test-started, joined to the
/// private network) "system" tor's torrc; annexd then serves that socket and
/// reports that address, and a stock git-annex reaches the repository at it.
/// A restarted annexd finds the enable-tor setup again by itself; once the helper
/// removes the hidden service, the onion is gone.
@Suite(.serialized, .timeLimit(minutes: 10)) struct EnableTorAdoptionTests {
    @Test(.enabled(if: geteuid() == 0, "annex-tor-helper runs as root (annexd would ask pkexec or sudo for it); run the tests as root"))
    func torEnableSystemAddsAndAdoptsAnEnableTorService() throws {
        let net = try PrivateTorNetwork.shared()
        let annex = TestEnvironment.gitAnnexVersions[1]
        let scratch = Scratch("annexd-etor")
        let root = scratch.path
        try Posix.makeDirectories(root + "/hs", mode: 0o700)
        try Posix.makeDirectories(root + "/s", mode: 0o755)
        let system = try net.startExtraTor(name: "etor")
        let torrc = system.torrcPath
        try sh("""
            git init -q repoA && cd repoA && git annex init -q A && printf 'enable-tor layout\\n' > f && git annex add -q f && git commit -qm f
            cd .. && git clone -q repoA repoC && cd repoC && git annex init -q C
            """, in: root, annex: annex)
        let uuidA = try DaemonPrivateTorTests.uuid(root + "/repoA")
        let helperArgs = ["--torrc", torrc, "--defaults-torrc", system.dataDir + "/empty.torrc", "--tor-data-root", root + "/hs",
                          "--socket-root", root + "/s", "--reload-command", "/bin/kill -HUP \(system.pid)", "--timeout", "60"]
        let daemonArgs = ["--system-torrc", torrc, "--tor-helper", TestEnvironment.torHelper] + helperArgs.map { "--tor-helper-arg=\($0)" }
        let stateDir = root + "/state"
        var a: DaemonProcess? = try DaemonProcess(stateDir: stateDir, extraArguments: daemonArgs)
        let before = try a!.call("repo.add", .object(["path": .string(root + "/repoA")]))
        let ownOnion = try #require(before["onion"]?.stringValue)

        // Without --system nothing is attempted.
        let refused = try a!.annexCLI("tor", "enable", "--repo", root + "/repoA")
        #expect(refused.status != 0 && refused.stderr.contains("--system"), "\(refused)")

        let enabled = try a!.annexCLI("tor", "enable", "--system", "--repo", root + "/repoA", "--json", timeout: 120)
        #expect(enabled.status == 0, "\(enabled)\n\(a!.log)")
        let result = try JSONValue(parsing: Array(enabled.stdout.utf8))
        let onion = try #require(result["onion"]?.stringValue)
        let port = try #require(result["port"]?.intValue)
        let socket = root + "/s/\(getuid())_\(uuidA)/s"
        #expect(result["socket"]?.stringValue == socket)
        #expect(onion != ownOnion)
        // Exactly git annex enable-tor's lines, and the hostname tor wrote is the address reported.
        let text = try String(contentsOfFile: torrc, encoding: .utf8)
        #expect(text.contains("HiddenServiceDir \(root)/hs/tor-annex_\(getuid())_\(uuidA)\nHiddenServicePort \(port) unix:\(socket)\n"), "\(text)")
        #expect(try system.hostname(hiddenServiceDir: "\(root)/hs/tor-annex_\(getuid())_\(uuidA)") == onion)
        let info = try a!.call("repo.info", .object(["repo": .string(uuidA)]))
        #expect(info["onion"]?.stringValue == onion && info["socket"]?.stringValue == socket)
        #expect(try String(contentsOfFile: root + "/repoA/.git/annex/creds/p2paddrs", encoding: .utf8).contains("tor-annex::\(onion):\(port)"))

        // A stock client reaches the repository at the enable-tor address, over the private network.
        let address = try #require(try a!.call("peer.invite", .object(["repo": .string(root + "/repoA"), "name": "C"]))["address"]?.stringValue)
        #expect(address.hasPrefix("tor-annex::\(onion):\(port):"))
        let viaNet = try Socks9050(socksPort: net.socksPort)
        // tor publishes a torrc service's descriptor a few seconds after its reload; nothing tells
        // the helper when (no control connection), so the client tries until it is there.
        let deadline = Date().addingTimeInterval(90)
        var linked = ""
        repeat {
            linked = try viaNet.run("echo \(address) | git annex p2p --link --name a 2>&1 && echo LINKED", in: root + "/repoC",
                                    annex: annex, allowFailure: true)
            if linked.contains("LINKED") { break }
            sleep(2)
        } while Date() < deadline
        #expect(linked.contains("LINKED"), "\(linked)")
        try viaNet.run("git annex get --from a f", in: root + "/repoC", annex: annex)
        #expect(try String(contentsOfFile: root + "/repoC/f", encoding: .utf8) == "enable-tor layout\n")

        // A new annexd finds the enable-tor service by itself and serves it again.
        #expect(a!.terminate() == 0)
        a = nil
        a = try DaemonProcess(stateDir: stateDir, extraArguments: daemonArgs)
        #expect(try a!.call("repo.info", .object(["repo": .string(uuidA)]))["onion"]?.stringValue == onion)
        try viaNet.run("git annex drop --force f && git annex get --from a f", in: root + "/repoC", annex: annex)
        #expect(try String(contentsOfFile: root + "/repoC/f", encoding: .utf8) == "enable-tor layout\n")

        // annex-tor-helper remove-hidden-service: the block leaves the torrc, tor reloads,
        // and the onion is no longer reachable.
        let removed = try Command.run([TestEnvironment.torHelper, "remove-hidden-service", "--uid", "\(getuid())", "--repo-uuid", uuidA] + helperArgs)
        #expect(removed.status == 0, "\(removed.stdout)\(removed.stderr)")
        #expect(try !String(contentsOfFile: torrc, encoding: .utf8).contains("tor-annex_\(getuid())_\(uuidA)"))
        let goneBy = Date().addingTimeInterval(90)
        var unreachable = false
        repeat {
            let r = try viaNet.run("git annex drop --force f >/dev/null 2>&1; timeout 30 git annex get --from a f 2>&1 && echo GOT", in: root + "/repoC",
                                   annex: annex, allowFailure: true)
            unreachable = !r.contains("GOT")
            if !unreachable { sleep(2) }
        } while !unreachable && Date() < goneBy
        #expect(unreachable, "the onion was still served after remove-hidden-service")
    }
}
