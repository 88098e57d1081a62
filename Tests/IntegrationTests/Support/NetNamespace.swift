import Foundation

/// A private network namespace (root only) with its loopback up: its 127.0.0.1:9050
/// belongs to the test, whatever listens on the host's. Unix sockets are reachable
/// from inside as from anywhere, which is how tests bridge into it.
final class NetNamespace {
    let name: String

    init() throws {
        name = "annexd-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try sh("ip netns add \(name) && ip netns exec \(name) ip link set lo up", in: "/")
    }

    deinit { _ = try? sh("ip netns delete \(name)", in: "/", allowFailure: true) }

    /// `argv` prefixed to run inside the namespace.
    func argv(_ args: [String]) -> [String] { ["ip", "netns", "exec", name] + args }

    /// Runs a shell script inside the namespace.
    @discardableResult
    func run(_ script: String, in cwd: String, annex: TestEnvironment.GitAnnex, allowFailure: Bool = false) throws -> String {
        let quoted = "'" + script.replacingOccurrences(of: "'", with: "'\\''") + "'"
        return try sh("ip netns exec \(name) sh -c \(quoted)", in: cwd, annex: annex, allowFailure: allowFailure)
    }
}
