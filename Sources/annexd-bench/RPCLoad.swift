import AnnexdKit
import Foundation

/// `annexd-bench rpc-load SOCKET CONNECTIONS SECONDS [THREADS]`: a compiled load generator.
/// CONNECTIONS connections, spread over THREADS threads (default 2), each with one
/// `daemon.status` request in flight at a time (poll(2), no runtime between the socket and the
/// clock). After half a second of warm-up it counts replies for SECONDS; prints p50 and p99 in
/// µs and requests per second, like `rpc-latency`.
enum RPCLoad {
    static let request = Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.status\"}\n".utf8)

    /// One thread's connections and what it measured.
    final class Worker: @unchecked Sendable {
        let fds: [Int32]
        var samples: [Double] = []
        var completed = 0
        var failure: String?
        init(fds: [Int32]) { self.fds = fds }

        func run(measureFrom: Double, until end: Double) {
            var sentAt = [Double](repeating: 0, count: fds.count)
            var buf = [UInt8](repeating: 0, count: 65536)
            var polled = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            for i in fds.indices {
                sentAt[i] = now()
                send(fds[i])
            }
            while failure == nil {
                if now() >= end { break }
                let n = poll(&polled, nfds_t(polled.count), 100)
                if n <= 0 { continue }
                for i in polled.indices where polled[i].revents != 0 {
                    polled[i].revents = 0
                    let fd = fds[i]
                    let r = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if r <= 0 { failure = "connection \(i) closed"; break }
                    // One request in flight per connection: a reply is whole when its newline came.
                    guard buf[r - 1] == 10 else { continue }
                    let done = now()
                    if sentAt[i] >= measureFrom && done < end {
                        samples.append((done - sentAt[i]) * 1e6)
                        completed += 1
                    }
                    sentAt[i] = done
                    send(fd)
                }
            }
        }

        private func send(_ fd: Int32) {
            let w = RPCLoad.request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if w != RPCLoad.request.count { failure = "write failed" }
        }
    }

    static func run(socket: String, connections: Int, seconds: Double, threads: Int) -> String {
        var fds: [Int32] = []
        for _ in 0..<connections {
            guard let fd = try? UnixSocket.connect(socket) else { fail("cannot connect to \(socket)") }
            fds.append(fd)
        }
        let t = max(1, min(threads, connections))
        let workers = (0..<t).map { w in Worker(fds: stride(from: w, to: connections, by: t).map { fds[$0] }) }
        let measureFrom = now() + 0.5, end = measureFrom + seconds
        onThreads(workers) { $0.run(measureFrom: measureFrom, until: end) }
        fds.forEach { close($0) }
        if let f = workers.compactMap(\.failure).first { fail(f) }
        var samples = workers.flatMap(\.samples)
        guard !samples.isEmpty else { fail("no replies in \(seconds) s") }
        samples.sort()
        let total = workers.reduce(0) { $0 + $1.completed }
        return String(format: "%.1f %.1f %.0f", samples[samples.count / 2], samples[samples.count * 99 / 100], Double(total) / seconds)
    }
}
