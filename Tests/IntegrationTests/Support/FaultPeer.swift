#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A P2P peer that misbehaves mid-DATA (fault-peer.py): it relays to a real annexd serving the
/// repository, so AUTH and the content are real, and tampers with the first `times` DATA
/// messages as `mode` says. Only for fault injection; everything else talks to real peers.
final class FaultPeer {
    enum Mode {
        /// Announces `k` bytes fewer than it sends.
        case more(Int)
        /// Announces `k` bytes more than it sends, then goes on with the protocol.
        case fewer(Int)
        /// Flips one byte in the middle of the content.
        case corrupt
        /// Sends `n` bytes of the content, then closes the connection.
        case cut(Int)

        var argv: [String] {
            switch self {
            case .more(let k): ["more", "\(k)"]
            case .fewer(let k): ["fewer", "\(k)"]
            case .corrupt: ["corrupt", "0"]
            case .cut(let n): ["cut", "\(n)"]
            }
        }
    }

    struct Unavailable: Error, CustomStringConvertible { let description: String }

    let scratch = Scratch("annexd-faultpeer")
    var socket: String { scratch.path + "/peer.sock" }
    private var output: String { scratch.path + "/out" }
    private let pid: Int32

    /// Starts relaying to `target` (the real peer's socket).
    init(relayingTo target: String, mode: Mode, times: Int = 1) throws {
        let script = TestEnvironment.packageRoot + "/Tests/IntegrationTests/Support/fault-peer.py"
        pid = try DaemonProcess.spawn(["/usr/bin/env", "python3", script, scratch.path + "/peer.sock", target] + mode.argv + ["\(times)"],
                                      stdinPath: nil, outputPath: scratch.path + "/out", errorPath: nil)
        let deadline = Date().addingTimeInterval(10)
        while !lines.contains("ready") {
            guard Date() < deadline else { throw Unavailable(description: "the fault peer did not start") }
            usleep(20_000)
        }
    }

    deinit {
        kill(pid, SIGKILL)
        _ = DaemonProcess.waitForExit(pid: pid, timeout: 5)
    }

    private var lines: [String] {
        ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// How many DATA messages it has tampered with so far.
    var faults: Int { lines.filter { $0 == "fault" }.count }
}

extension TransferFixture {
    /// Routes the serving annexd's onion through a fault peer; returns it (keep it alive).
    func routeThroughFaultPeer(_ mode: FaultPeer.Mode, times: Int = 1) throws -> FaultPeer {
        guard let route = servingRoute else { throw FaultPeer.Unavailable(description: "the fixture serves with stock git-annex") }
        let peer = try FaultPeer(relayingTo: route.socket, mode: mode, times: times)
        try net.map(route.address, to: peer.socket)
        return peer
    }
}
