// Measurement helper for `make bench` (scripts/bench drives it).
//   annexd-bench sha256 FILE
//       swift-crypto SHA-256 over FILE, streamed in 1 MiB reads: prints MB/s.
//   annexd-bench rpc-latency SOCKET [N]
//       N sequential `daemon.status` calls on one connection (a compiled client, so the
//       numbers are the server's, not a scripting runtime's): prints p50 and p99 in µs and req/s.
//   annexd-bench rpc-load SOCKET CONNECTIONS SECONDS [THREADS]
//       CONNECTIONS connections each with one `daemon.status` in flight (RPCLoad.swift):
//       prints p50 and p99 in µs and req/s.
//   annexd-bench rpc-cpu [N]
//       The RPC server's CPU work for one `daemon.status` without I/O (RPCCPU.swift): parse,
//       answer, write and all three, in ns per request.
//   annexd-bench p2p-load SOCKET TOKEN REPO KEYSFILE CONNECTIONS SECONDS
//       CONNECTIONS authenticated P2P peers getting keys at once (P2PLoad.swift): prints
//       gets, p50 and p99 in ms, MB/s and failures.
//   annexd-bench get LOCALREPO KEY -- SERVER-COMMAND...
//       annexd's P2P client gets KEY into LOCALREPO from SERVER-COMMAND (verified):
//       prints seconds and MB/s.
import AnnexdKit
import Foundation
import Shared

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Runs `body` for each item on a thread of its own, and waits for all of them.
func onThreads<T: Sendable>(_ items: [T], _ body: @escaping @Sendable (T) -> Void) {
    let group = DispatchGroup()
    for item in items {
        group.enter()
        Thread { body(item); group.leave() }.start()
    }
    group.wait()
}

func fail(_ s: String) -> Never {
    FileHandle.standardError.write(Data("annexd-bench: \(s)\n".utf8))
    exit(1)
}

let args = Array(CommandLine.arguments.dropFirst())
switch args.first {
case "sha256":
    guard args.count == 2 else { fail("usage: annexd-bench sha256 FILE") }
    let fd = open(args[1], O_RDONLY)
    guard fd >= 0 else { fail("cannot open \(args[1])") }
    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
    let h = HashAlgorithm.sha256.makeHasher()
    var total = 0
    let start = now()
    while true {
        let n = read(fd, buf.baseAddress, buf.count)
        if n <= 0 { break }
        h.update(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
        total += n
    }
    _ = h.finalizeHex()
    let secs = now() - start
    print(String(format: "%.3f %.1f", secs, Double(total) / secs / 1e6))
case "get":
    guard args.count >= 5, args[3] == "--" else { fail("usage: annexd-bench get LOCALREPO KEY -- SERVER-COMMAND...") }
    Posix.ignoreSIGPIPE()
    do {
        let store = ObjectStore(repo: try AnnexRepo(path: args[1]))
        let key = try AnnexKey(parsing: args[2])
        let start = now()
        let client = try P2PClient.spawn(Array(args[4...]), store: store)
        try client.connect()
        guard try client.get(key) else { fail("get of \(key) failed") }
        client.close()
        let secs = now() - start
        print(String(format: "%.3f %.1f", secs, Double(key.size ?? 0) / secs / 1e6))
    } catch {
        fail("\(error)")
    }
case "rpc-latency":
    // --spin: the client polls its socket instead of sleeping in read(), so the numbers
    // hold the server's latency (and its wake-up) but not the client's own wake-up.
    let spin = args.contains("--spin")
    let positional = args.filter { $0 != "--spin" }
    guard positional.count >= 2 else { fail("usage: annexd-bench rpc-latency SOCKET [N] [--spin]") }
    let n = positional.count > 2 ? Int(positional[2]) ?? 20000 : 20000
    guard let fd = try? UnixSocket.connect(positional[1]) else { fail("cannot connect to \(positional[1])") }
    if spin { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    let request = Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.status\"}\n".utf8)
    var buf = [UInt8](repeating: 0, count: 65536)
    var samples = [Double]()
    samples.reserveCapacity(n)
    let warmup = n / 10
    let start = now()
    for i in 0..<(n + warmup) {
        let t0 = now()
        _ = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var gotLine = false
        while !gotLine {
            let r = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if r < 0 && spin && errno == EAGAIN { continue }
            if r <= 0 { fail("connection closed") }
            gotLine = buf[r - 1] == 10
        }
        if i >= warmup { samples.append((now() - t0) * 1e6) }
    }
    let total = now() - start
    samples.sort()
    print(String(format: "%.1f %.1f %.0f", samples[samples.count / 2], samples[samples.count * 99 / 100], Double(n + warmup) / total))
case "rpc-cpu":
    print(RPCCPU.run(rounds: args.count > 1 ? Int(args[1]) ?? 200_000 : 200_000))
case "rpc-load":
    guard args.count >= 4, let c = Int(args[2]), c > 0, let secs = Double(args[3]), secs > 0 else {
        fail("usage: annexd-bench rpc-load SOCKET CONNECTIONS SECONDS [THREADS]")
    }
    print(RPCLoad.run(socket: args[1], connections: c, seconds: secs, threads: args.count > 4 ? Int(args[4]) ?? 2 : 2))
case "p2p-load":
    guard args.count >= 7, let c = Int(args[5]), c > 0, let secs = Double(args[6]), secs > 0 else {
        fail("usage: annexd-bench p2p-load SOCKET TOKEN REPO KEYSFILE CONNECTIONS SECONDS [INTERVAL]")
    }
    Posix.ignoreSIGPIPE()
    print(P2PLoad.run(socket: args[1], token: args[2], repo: args[3], keysFile: args[4], connections: c, seconds: secs,
                      interval: args.count > 7 ? Double(args[7]) ?? 0 : 0))
default:
    fail("usage: annexd-bench sha256 FILE | p2p-load SOCKET TOKEN REPO KEYSFILE CONNECTIONS SECONDS [INTERVAL] | rpc-latency SOCKET [N] | rpc-load SOCKET CONNECTIONS SECONDS [THREADS] | get LOCALREPO KEY -- SERVER-COMMAND...")
}
