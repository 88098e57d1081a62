#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import AnnexdKit

/// Runs commands that see a real tor's SOCKS port at 127.0.0.1:9050, the port
/// stock git-annex hard-codes for tor-annex remotes. As root this is a private
/// network namespace whose 9050 is bridged (socat, through a unix socket) to
/// `127.0.0.1:socksPort` outside; without root, 9050 itself must be free.
final class Socks9050 {
    struct Unavailable: Error, CustomStringConvertible { let description: String }

    let scratch = Scratch("annexd-s9050")
    let namespace: NetNamespace?
    private var bridges: [BackgroundProcess] = []

    init(socksPort: Int) throws {
        if getuid() == 0 {
            let ns = try NetNamespace()
            namespace = ns
            let path = scratch.path + "/socks"
            bridges.append(try BackgroundProcess(["socat", "UNIX-LISTEN:\(path),fork,mode=600", "TCP:127.0.0.1:\(socksPort)"], logPath: nil))
            try Self.waitUntil("the bridge socket \(path)") { Posix.exists(path) }
            bridges.append(try BackgroundProcess(ns.argv(["socat", "TCP-LISTEN:9050,bind=127.0.0.1,reuseaddr,fork", "UNIX-CONNECT:\(path)"]),
                                                 logPath: nil))
            try Self.waitUntil("127.0.0.1:9050 in namespace \(ns.name)") {
                ((try? sh("ip netns exec \(ns.name) ss -ltn", in: "/")) ?? "").contains("127.0.0.1:9050")
            }
        } else {
            guard OwnTor.loopbackPortIsFree(9050) else {
                throw Unavailable(description: "127.0.0.1:9050 is in use and only root can make a private network namespace")
            }
            namespace = nil
            bridges.append(try BackgroundProcess(["socat", "TCP-LISTEN:9050,bind=127.0.0.1,reuseaddr,fork", "TCP:127.0.0.1:\(socksPort)"], logPath: nil))
            try Self.waitUntil("127.0.0.1:9050") { !OwnTor.loopbackPortIsFree(9050) }
        }
    }

    deinit {
        for b in bridges { kill(b.pid, SIGKILL) }
    }

    /// Runs a shell script where 127.0.0.1:9050 is the tor.
    @discardableResult
    func run(_ script: String, in cwd: String, annex: TestEnvironment.GitAnnex, allowFailure: Bool = false) throws -> String {
        guard let namespace else { return try sh(script, in: cwd, annex: annex, allowFailure: allowFailure) }
        return try namespace.run(script, in: cwd, annex: annex, allowFailure: allowFailure)
    }

    static func waitUntil(_ what: String, timeout: Double = 10, _ ready: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if ready() { return }
            usleep(20_000)
        }
        throw Unavailable(description: "\(what) did not come up within \(Int(timeout)) s")
    }
}
