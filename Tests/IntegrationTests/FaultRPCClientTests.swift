#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// Fault injection on the RPC socket: clients that vanish while events stream to them, and
/// clients that send a batch and close before reading its replies. The daemon serves the
/// others throughout (a subscriber that stays sees every event), and gives back every
/// descriptor those clients held (/proc/PID/fd).
@Suite(.serialized, .timeLimit(minutes: 5)) struct FaultRPCClientTests {
    struct Setup {
        let d: DaemonProcess
        let scratch: Scratch
        /// Sets the invited peer's access, read-only for even `i`: each call makes one event.
        let toggle: (Int) throws -> Void
        /// The daemon's descriptors once warmed up, before `stays` connected.
        let baseline: Int
        /// A subscriber that stays connected and reads.
        let stays: RPCTestConnection
    }

    /// A daemon with one repository and one invited peer, whose access toggling makes events.
    private func daemonWithEvents() throws -> Setup {
        let d = try DaemonProcess()
        let scratch = Scratch("annexd-fault-rpc")
        let path = scratch.path + "/r"
        _ = try sh("git init -q r && cd r && git annex init -q r", in: scratch.path)
        _ = try d.call("repo.add", .object(["path": .string(path)]))
        _ = try d.call("peer.invite", .object(["repo": .string(path), "name": "nas"]))
        let toggle: (Int) throws -> Void = { i in
            _ = try d.call("peer.setAccess", .object(["repo": .string(path), "name": "nas",
                                                      "access": .string(i % 2 == 0 ? "read-only" : "read-write")]))
        }
        try toggle(0)
        let baseline = FaultChecks.descriptors(d)
        let stays = try d.connect()
        _ = try stays.request("events.subscribe")
        return Setup(d: d, scratch: scratch, toggle: toggle, baseline: baseline, stays: stays)
    }

    /// Reads `n` peer.access_changed events from a subscriber (bounded).
    private func accessChanges(_ sub: RPCTestConnection, count n: Int) throws -> Int {
        var seen = 0
        while seen < n, let line = try sub.readJSON(timeout: 10) {
            if line["params"]?["type"]?.stringValue == "peer.access_changed" { seen += 1 }
        }
        return seen
    }

    @Test func subscribersVanishingMidStreamLeaveTheOthersServedAndNoDescriptors() throws {
        let setup = try daemonWithEvents()
        defer { withExtendedLifetime(setup) {} }
        let (d, toggle, baseline, stays) = (setup.d, setup.toggle, setup.baseline, setup.stays)
        for round in 0..<5 {
            var vanishing: [RPCTestConnection] = []
            for _ in 0..<20 {
                let c = try d.connect()
                _ = try c.request("events.subscribe", ["since": 0])
                vanishing.append(c)
            }
            // Events flow to all of them, unread; half go mid-stream, the rest after more events.
            for i in 0..<20 { try toggle(round * 40 + i + 1) }
            vanishing.removeFirst(10)
            for i in 20..<40 { try toggle(round * 40 + i + 1) }
            vanishing.removeAll()
        }
        #expect(try accessChanges(stays, count: 200) == 200, "the subscriber that stayed saw every event")
        try FaultChecks.expectServing(d)
        let after = FaultChecks.descriptorsSettle(d, atMost: baseline + 1)
        #expect(after <= baseline + 1, "annexd held \(baseline) descriptors (+1 for the subscriber that stays) before, \(after) after")
    }

    @Test func clientsClosingBeforeReadingABatchLeaveTheOthersServedAndNoDescriptors() throws {
        let setup = try daemonWithEvents()
        defer { withExtendedLifetime(setup) {} }
        let (d, toggle, baseline, stays) = (setup.d, setup.toggle, setup.baseline, setup.stays)
        let batch = "[" + (1...500).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"daemon.status"}"# }.joined(separator: ",") + "]"
        for i in 0..<40 {
            let c = try d.connect()
            try c.send(batch)
            if i % 2 == 0 { c.shutdownWrite() }  // half say they are done first, half just go
            try toggle(i + 1)
        }
        #expect(try accessChanges(stays, count: 40) == 40, "the subscriber saw every event")
        // A batch on a connection that stays gets all its replies.
        let c = try d.connect()
        try c.send(batch)
        let replies = try #require(try c.readJSON(timeout: 10)?.arrayValue)
        #expect(replies.count == 500 && replies.allSatisfy { $0["result"]?["pid"]?.intValue == Int64(d.pid) })
        try FaultChecks.expectServing(d)
        let after = FaultChecks.descriptorsSettle(d, atMost: baseline + 2)
        #expect(after <= baseline + 2, "annexd held \(baseline) descriptors before (+2 for the connections that stay), \(after) after")
    }
}
