#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AnnexdKit
@testable import Shared

/// Fault injection on the P2P data path: a peer (a real annexd behind fault-peer.py) that
/// sends more or fewer bytes than its DATA announced, corrupts the content, or hangs up
/// mid-DATA. Each time the attempt fails with its precise reason, nothing bad is stored, a
/// good partial is resumed, and the retry (to the same peer, behaving again) finishes.
/// (A peer that stops mid-DATA: TransferSettingsIntegrationTests.aPeerThatStopsMidDataIsStalledAndTheTransferResumes.)
@Suite(.serialized, .timeLimit(minutes: 10)) struct FaultPeerDataTests {
    static let size = 4 << 20

    /// A fixture whose serving peer is behind a fault peer; the retry comes `retryDelay` s later.
    private func fixture(_ mode: FaultPeer.Mode, retryDelay: Double = 2) throws -> (TransferFixture, FaultPeer, key: String) {
        let f = try TransferFixture(files: ["big": Self.size])
        let peer = try f.routeThroughFaultPeer(mode)
        _ = try f.daemon.process.call("settings.set", ["retry_delay": .double(retryDelay), "retries": 5])
        return (f, peer, try f.key("big"))
    }

    private func firstFailure(_ f: TransferFixture, _ id: String) throws -> JSONValue {
        try f.wait(id, timeout: 30, until: { $0["error"]?["code"]?.stringValue != nil || $0["state"]?.stringValue == "done" })
    }

    private func partial(_ f: TransferFixture, _ key: String) -> Int64? {
        Posix.fileSize(f.client + "/.git/annex/tmp/" + key)
    }

    private func expectFinished(_ f: TransferFixture, _ id: String, key: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSONValue {
        let end = try f.wait(id, timeout: 60)
        #expect(end["state"]?.stringValue == "done", "\(end)", sourceLocation: sourceLocation)
        #expect(sameBytes(f.client + "/big", f.server + "/big"), sourceLocation: sourceLocation)
        #expect(try f.whereis(key, in: f.client).contains(f.clientUUID), sourceLocation: sourceLocation)
        try FaultChecks.expectServing(f.daemon.process, sourceLocation: sourceLocation)
        return end
    }

    /// "DATA n-K" then n bytes: the K extra bytes are read where a message should be, so the
    /// attempt is a protocol_error; the n-K bytes received are a good partial, kept and resumed.
    @Test func moreBytesThanAnnouncedIsAProtocolErrorAndThePartialResumes() throws {
        let extra = 1 << 20
        let (f, peer, key) = try fixture(.more(extra))
        let id = try f.start("get", paths: ["big"])[0]["id"]!.stringValue!
        let failed = try firstFailure(f, id)
        #expect(failed["error"]?["code"]?.stringValue == "protocol_error", "\(failed)")
        #expect((failed["error"]?["message"]?.stringValue ?? "").contains("peer sent something that is not a P2P message during big"),
                "the message says who sent what: \(failed)")
        #expect(failed["state"]?.stringValue == "queued" && failed["next_retry"]?.doubleValue != nil, "\(failed)")
        #expect(partial(f, key) == Int64(Self.size - extra), "the announced bytes are kept as the partial")
        #expect(!sameBytes(f.client + "/big", f.server + "/big"), "nothing stored yet")

        let end = try expectFinished(f, id, key: key)
        #expect(end["resumed_from"]?.intValue == Int64(Self.size - extra), "resumed from the partial: \(end)")
        #expect(peer.faults == 1)
        #expect(try FaultChecks.failures(of: id, on: f.daemon.process).compactMap { $0["code"]?.stringValue } == ["protocol_error"])
    }

    /// The content with one byte flipped, marked VALID: the checksum refuses it (verify_failed),
    /// the partial is deleted and no object is stored; the retry gets the real content.
    @Test func corruptContentIsRefusedAndNothingIsStored() throws {
        let (f, peer, key) = try fixture(.corrupt)
        let id = try f.start("get", paths: ["big"])[0]["id"]!.stringValue!
        let failed = try firstFailure(f, id)
        #expect(failed["error"]?["code"]?.stringValue == "verify_failed", "\(failed)")
        #expect((failed["error"]?["message"]?.stringValue ?? "").contains("checksum"), "\(failed)")
        #expect(partial(f, key) == nil, "the bad content is not kept")
        let location = try sh("git annex contentlocation \(key)", in: f.client, annex: f.annex, allowFailure: true)
        #expect(location.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "no object stored: \(location)")
        #expect(try !f.whereis(key, in: f.client).contains(f.clientUUID), "the location log does not claim it")

        let end = try expectFinished(f, id, key: key)
        #expect((end["resumed_from"]?.intValue ?? 0) == 0, "started over: \(end)")
        #expect(peer.faults == 1)
    }

    /// "DATA n+K" then n bytes and the protocol goes on: the receiver waits for bytes that never
    /// come, which stall detection ends (stalled); the partial (the content plus the peer's
    /// next message, longer than the key) is discarded by the retry, which finishes.
    @Test func fewerBytesThanAnnouncedStallsAndTheBadPartialIsDiscarded() throws {
        let (f, peer, key) = try fixture(.fewer(1 << 20))
        try sh("git config remote.peer.annex-stalldetection 0KiB/2s", in: f.client)
        let id = try f.start("get", paths: ["big"])[0]["id"]!.stringValue!
        let failed = try firstFailure(f, id)
        #expect(failed["error"]?["code"]?.stringValue == "stalled", "\(failed)")
        #expect((failed["error"]?["message"]?.stringValue ?? "").contains("no data moved in 2 s"), "\(failed)")
        #expect(failed["state"]?.stringValue == "queued", "\(failed)")
        #expect((partial(f, key) ?? 0) > Int64(Self.size), "the partial holds more than the key: \(partial(f, key) ?? -1)")

        let end = try expectFinished(f, id, key: key)
        #expect((end["resumed_from"]?.intValue ?? 0) == 0, "the overlong partial was not resumed: \(end)")
        #expect(peer.faults == 1)
    }

    /// n-K bytes of "DATA n", then the peer hangs up: peer_unreachable, the partial kept, and the
    /// retry asks for exactly the rest.
    @Test func aPeerThatHangsUpMidDataLeavesAResumablePartial() throws {
        let sent = 3 << 20
        let (f, peer, key) = try fixture(.cut(sent))
        let id = try f.start("get", paths: ["big"])[0]["id"]!.stringValue!
        let failed = try firstFailure(f, id)
        #expect(failed["error"]?["code"]?.stringValue == "peer_unreachable", "\(failed)")
        #expect((failed["error"]?["message"]?.stringValue ?? "").contains("the partial is kept"), "\(failed)")
        #expect(partial(f, key) == Int64(sent))

        let end = try expectFinished(f, id, key: key)
        #expect(end["resumed_from"]?.intValue == Int64(sent), "\(end)")
        #expect(peer.faults == 1)
    }
}
