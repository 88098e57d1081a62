import Foundation
import Shared

/// `annexd-bench rpc-cpu [N]`: the CPU time of the RPC server's work for one `daemon.status`
/// with no I/O — parse the request line, dispatch it inline, build the status and write the
/// reply — each stage timed over N rounds on this thread, in ns per request.
enum RPCCPU {
    static func run(rounds n: Int) -> String {
        var dispatcher = RPCDispatcher<Int>(version: "bench")
        let status = DaemonStatus(version: "0.1.0", pid: 4242, boot: "0f1e2d3c4b5a69788796a5b4c3d2e1f0", uptime: 1234.5678,
                                  stateDir: "/home/user/.local/state/annexd", socket: "/run/user/1000/annexd/annexd.sock",
                                  tor: "system", repos: 3, connections: 2, latestEvent: 1234)
        dispatcher.registerInline(DaemonStatusMethod.self) { _, _ in status }
        let line = Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.status\"}".utf8)
        var sink = 0
        func stage(_ body: () -> Int) -> Double {
            for _ in 0..<(n / 10) { sink &+= body() }
            let t0 = now()
            for _ in 0..<n { sink &+= body() }
            return (now() - t0) * 1e9 / Double(n)
        }
        let parse = stage {
            if case .single(.request(let r)) = JSONRPC.parseIncoming(line) { return r.method.utf8.count }
            return 0
        }
        guard case .single(.request(let request)) = JSONRPC.parseIncoming(line) else { fail("the bench request does not parse") }
        let answer = stage {
            if case .success(let v)? = dispatcher.answerInline(request, context: 0), case .object(let o) = v { return o.count }
            return 0
        }
        let result = status.json
        let write = stage { RPCResponse(id: 1, result: result).serializedBytes().count }
        let all = stage {
            guard case .single(.request(let r)) = JSONRPC.parseIncoming(line),
                  let outcome = dispatcher.answerInline(r, context: 0), let id = r.id else { return 0 }
            return RPCResponse(id: id, result: outcome).serializedBytes().count
        }
        return String(format: "parse %.0f answer %.0f write %.0f all %.0f (ns/request; %d)", parse, answer, write, all, sink & 1)
    }
}
