import Foundation
import Testing

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

/// The network interfaces this test process sees. The transit and pairing suites run only
/// where `lo` (up) is the only one, so no hint they advertise or dial can reach anything but
/// this machine's loopback: `make test` runs them so (as root, under `unshare --net`).
enum NetworkIsolation {
    /// Interface names, and whether `lo` is up, from getifaddrs (which, unlike /sys/class/net,
    /// always describes the caller's own namespace).
    static let interfaces = scan().names
    static let loopbackUp = scan().loopbackUp

    private static func scan() -> (names: [String], loopbackUp: Bool) {
        var names: [String] = []
        var up = false
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return ([], false) }
        defer { freeifaddrs(list) }
        var entry = list
        while let e = entry {
            let name = String(cString: e.pointee.ifa_name)
            if !names.contains(name) { names.append(name) }
            if name == "lo" && e.pointee.ifa_flags & UInt32(IFF_UP) != 0 { up = true }
            entry = e.pointee.ifa_next
        }
        return (names, up)
    }

    static var onlyLoopback: Bool { interfaces == ["lo"] && loopbackUp }

    /// Why a suite that needs `onlyLoopback` does not run here.
    static var why: Comment {
        let seen = interfaces.isEmpty ? "none" : interfaces.joined(separator: ", ")
        return Comment(rawValue: "runs only in a network namespace whose one interface is lo, up (here: \(seen)"
            + (interfaces.contains("lo") && !loopbackUp ? ", lo down" : "")
            + "), so nothing it advertises or dials can leave this machine; `make test` runs it in one"
            + " as root (unshare --net), e.g. sudo unshare --net sh -c 'ip link set lo up && swift test --skip-build --filter SUITE'")
    }
}
