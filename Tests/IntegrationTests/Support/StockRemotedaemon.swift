#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import AnnexdKit

/// Stock `git annex remotedaemon` serving a repository as a tor-annex peer, reached through
/// the onion network's SOCKS stand-in: a fake onion in creds/p2paddrs, /etc/tor/torrc
/// bind-mounted (root: a mount namespace) so remotedaemon finds its socket, and an address
/// with a fresh token from `git annex p2p --gen-addresses`. It runs in the onion network's
/// network namespace, whose 127.0.0.1:9050 (the port stock git-annex hard-codes) is the
/// stand-in: so it also dials its own tor-annex remotes (NOTIFYCHANGE, then `git fetch`
/// through git-remote-tor-annex when one changes). It watches the remotes it started with;
/// `reload()` after linking another.
final class StockRemotedaemon {
    struct Failed: Error, CustomStringConvertible { let description: String }
    let process: ChildProcess
    /// tor-annex::ONION:1234:TOKEN, for linking.
    let address: String
    let socket: String
    /// With `debug`, git-annex's --debug output (the P2P messages it exchanges) goes here.
    let logPath: String

    /// `scratch`: a directory for its torrc, socket and log.
    init(repo: String, scratch: String, net: OnionNetwork, annex: TestEnvironment.GitAnnex, debug: Bool = false) throws {
        let uuid = try sh("git config annex.uuid", in: repo).trimmingCharacters(in: .whitespacesAndNewlines)
        let onion = OnionNetwork.fakeOnionValid()
        socket = scratch + "/rdsock/s"
        try Posix.makeDirectories(scratch + "/rdsock")
        try "HiddenServiceDir /var/lib/tor/tor-annex_\(getuid())_\(uuid)\nHiddenServicePort 1234 unix:\(socket)\n"
            .write(toFile: scratch + "/torrc", atomically: true, encoding: .utf8)
        try Posix.makeDirectories(repo + "/.git/annex/creds")
        try "tor-annex::\(onion):1234\n".write(toFile: repo + "/.git/annex/creds/p2paddrs", atomically: true, encoding: .utf8)
        guard let a = try sh("git annex p2p --gen-addresses", in: repo, annex: annex)
            .split(separator: "\n").first(where: { $0.hasPrefix("tor-annex::") }).map(String.init) else {
            throw Failed(description: "git annex p2p --gen-addresses printed no address")
        }
        address = a
        logPath = scratch + "/remotedaemon.log"
        // remotedaemon reads its commands on stdin and stops at EOF: closing our end stops it.
        process = try ChildProcess((net.namespace?.argv([]) ?? []) + ["env", "PATH=\(annex.binDir):/usr/bin:/bin", "unshare", "-m", "sh", "-c",
                                    "mount --bind \(scratch)/torrc /etc/tor/torrc && cd \(repo) && exec git annex remotedaemon --foreground \(debug ? "--debug 2>\(logPath)" : "") >/dev/null"],
                                   quietStderr: true)
        let deadline = Date().addingTimeInterval(20)
        while !Posix.exists(socket) && Date() < deadline { usleep(50_000) }
        guard Posix.exists(socket) else { stop(); throw Failed(description: "remotedaemon did not listen on \(socket)") }
        try net.map("\(onion):1234", to: socket)
    }

    /// Tells remotedaemon to read the git configuration again (RELOAD on its stdin): it then
    /// connects to the tor-annex remotes added since it started.
    func reload() throws {
        let line = Array("RELOAD\n".utf8)
        guard write(process.stdinFD, line, line.count) == line.count else {
            throw Failed(description: "could not write RELOAD to remotedaemon: \(String(cString: strerror(errno)))")
        }
    }

    func stop() {
        process.closeStdin()
        process.closeStdout()
        process.wait()
    }

    deinit { stop() }
}
