#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// Fault injection: tor (the SOCKS stand-in every peer is dialled through) is killed while a
/// get is moving bytes. The attempt fails as peer_unreachable, the attempts while tor is
/// down say tor's SOCKS port cannot be reached, the partial is kept, and once tor is back the
/// transfer finishes from the partial; the daemon serves throughout.
/// (The private Tor network's own client tor: DaemonPrivateTorTests; the peer itself dying:
/// TransferRecoveryTests.aPeerThatDiesIsRetriedUntilItReturns.)
@Suite(.serialized, .timeLimit(minutes: 10)) struct FaultTorKilledTests {
    @Test func torKilledMidGetIsRetriedAndFinishesWhenTorIsBack() throws {
        let size = 32 << 20
        let f = try TransferFixture(files: ["big": size])
        let key = try f.key("big")
        _ = try f.daemon.process.call("settings.set", ["download_limit": .int(4 << 20), "retry_delay": 0.5, "retries": 20])
        let id = try f.start("get", paths: ["big"])[0]["id"]!.stringValue!
        _ = try f.wait(id, until: { ($0["bytes"]?.intValue ?? 0) > 4 << 20 })
        f.net.killSOCKS()
        let failed = try f.wait(id, timeout: 30, until: { $0["error"]?["code"]?.stringValue != nil })
        #expect(failed["error"]?["code"]?.stringValue == "peer_unreachable", "\(failed)")
        #expect(failed["state"]?.stringValue == "queued" && failed["next_retry"]?.doubleValue != nil, "retried: \(failed)")
        let kept = Posix.fileSize(f.client + "/.git/annex/tmp/" + key) ?? 0
        #expect(kept > 2 << 20 && kept < Int64(size), "partial of \(kept) bytes")

        // While tor is down, each attempt says why, and the daemon serves.
        let down = try f.wait(id, timeout: 30, until: { ($0["error"]?["message"]?.stringValue ?? "").contains("SOCKS port") })
        #expect(down["error"]?["code"]?.stringValue == "peer_unreachable", "\(down)")
        #expect((down["error"]?["message"]?.stringValue ?? "").contains("is tor running?"), "\(down)")
        try FaultChecks.expectServing(f.daemon.process)

        try f.net.restartSOCKS()
        _ = try f.daemon.process.call("settings.set", ["download_limit": 0])
        let end = try f.wait(id, timeout: 90)
        #expect(end["state"]?.stringValue == "done", "\(end)")
        #expect((end["resumed_from"]?.intValue ?? 0) > 2 << 20, "resumed from the partial: \(end)")
        #expect(sameBytes(f.client + "/big", f.server + "/big"))
        #expect(try f.whereis(key, in: f.client).contains(f.clientUUID))
        let codes = try FaultChecks.failures(of: id, on: f.daemon.process).compactMap { $0["code"]?.stringValue }
        #expect(!codes.isEmpty && codes.allSatisfy { $0 == "peer_unreachable" }, "\(codes)")
        try FaultChecks.expectServing(f.daemon.process)
    }
}
