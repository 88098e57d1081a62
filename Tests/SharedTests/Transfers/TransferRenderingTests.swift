import Testing
@testable import Shared

@Suite struct TransferRenderingTests {
    typealias R = TransferRendering

    @Test func bytes() {
        #expect(R.bytes(0) == "0 B")
        #expect(R.bytes(1023) == "1023 B")
        #expect(R.bytes(1024) == "1.0 KiB")
        #expect(R.bytes(1_258_291) == "1.2 MiB")
        #expect(R.bytes(150 << 20) == "150 MiB")
        #expect(R.bytes(99 << 30 + 999 << 20) == "100 GiB")
        #expect(R.bytes((1 << 20) - 1) == "1.0 MiB", "1023.99 KiB rounds up into the next unit")
        #expect(R.bytes(Int64.max) == "8.0 EiB")
    }

    @Test func rates() {
        #expect(R.rate(0) == "--")
        #expect(R.rate(.nan) == "--")
        #expect(R.rate(3.4 * 1_048_576) == "3.4 MiB/s")
        #expect(R.rate(500) == "500 B/s")
    }

    @Test func durations() {
        #expect(R.duration(nil) == "--")
        #expect(R.duration(-1) == "--")
        #expect(R.duration(0) == "0s")
        #expect(R.duration(11.2) == "12s")
        #expect(R.duration(184) == "3m04s")
        #expect(R.duration(7500) == "2h05m")
        #expect(R.duration(400_000) == ">99h")
    }

    @Test func bars() {
        #expect(R.bar(0, width: 10) == "[>         ]")
        #expect(R.bar(0.45, width: 10) == "[====>     ]")
        #expect(R.bar(1, width: 10) == "[==========]")
        #expect(R.bar(1.7, width: 4) == "[====]")
        #expect(R.bar(nil, width: 9) == "[    ?    ]")
        for f in stride(from: 0.0, through: 1.0, by: 0.05) { #expect(R.bar(f, width: 20).count == 22) }
    }

    @Test func plainLines() {
        let now = 1000.0
        #expect(R.line(transfer("a", .done, bytes: 2_000_000), now: now) == "get photos/a.jpg from nas: done (1.9 MiB)")
        #expect(R.line(transfer("a", .queued, file: nil), now: now) == "get SHA256E-s2000000--abc.jpg from nas: queued")
        #expect(R.line(transfer("a", .active, direction: .put), now: now) == "copy photos/a.jpg to nas: started")
        #expect(R.line(transfer("a", .active, attempt: 3), now: now) == "get photos/a.jpg from nas: started (attempt 3)")
        #expect(R.line(transfer("a", .paused, bytes: 1 << 20), now: now) == "get photos/a.jpg from nas: paused at 1.0 MiB")
        #expect(R.line(transfer("a", .failed, error: unreachable), now: now)
                == "get photos/a.jpg from nas: failed: nas did not answer over tor (peer_unreachable)")
        #expect(R.line(transfer("a", .failed, nextRetry: 1030, error: unreachable), now: now)
                == "get photos/a.jpg from nas: failed: nas did not answer over tor (peer_unreachable); retrying in 30s")
        #expect(R.line(transfer("a", .queued, nextRetry: 1030, error: unreachable), now: now)
                == "get photos/a.jpg from nas: failed: nas did not answer over tor (peer_unreachable); retrying in 30s")
        #expect(R.line(transfer("a", .queued, nextRetry: 1030), now: now) == "get photos/a.jpg from nas: failed; retrying in 30s")
        // Failed with one source, queued for the next.
        #expect(R.line(transfer("a", .queued, error: unreachable), now: now)
                == "get photos/a.jpg from nas: queued (last attempt: nas did not answer over tor (peer_unreachable))")
        #expect(R.line(transfer("a", .canceled), now: now) == "get photos/a.jpg from nas: canceled")
        var noPeer = transfer("a", .queued)
        noPeer.peer = nil
        #expect(R.line(noPeer, now: now) == "get photos/a.jpg: queued")
        noPeer.peer = TransferPeer(uuid: "5a1e0000-1111", name: nil)
        #expect(R.line(noPeer, now: now) == "get photos/a.jpg from 5a1e0000: queued")
    }

    @Test func progressLines() {
        let active = transfer("a", .active, size: 2 << 20, bytes: 900 << 10, rate: 3.4 * 1_048_576, eta: 12)
        #expect(R.progressLine(active, width: 100, now: 0)
                == "get photos/a.jpg  [========>           ]  43%  900 KiB/2.0 MiB  3.4 MiB/s  ETA 12s")
        let unknown = transfer("a", .active, size: nil, bytes: 900 << 10)
        #expect(R.progressLine(unknown, width: 100, now: 0) == "get photos/a.jpg  [         ?          ]   --  900 KiB  --  ETA --")
        #expect(R.progressLine(transfer("a", .queued), width: 100, now: 0) == "get photos/a.jpg  queued")
        // Narrow: the name loses its start, then the line is cut to the width.
        let long = transfer("a", .active, file: "very/long/directory/name/photo-0001.jpg", size: 2 << 20, bytes: 1 << 20)
        let narrow = R.progressLine(long, width: 80, now: 0)
        #expect(narrow.count <= 80)
        #expect(narrow.hasPrefix("…") && narrow.contains("photo-0001.jpg  [==========>"))
        for w in [20, 40, 60, 79] { #expect(R.progressLine(long, width: w, now: 0).count <= w) }
    }

    @Test func summaries() {
        let ok = TransferWatch([transfer("a", .done), transfer("b", .done, size: 1 << 20)]).outcome
        #expect(R.summary(ok, now: 0) == ["2 done (2.9 MiB)"])
        let bad = TransferWatch([transfer("a", .done), transfer("b", .failed, file: "b.jpg", error: unreachable),
                                 transfer("c", .canceled, file: "c.jpg")]).outcome
        #expect(R.summary(bad, now: 0) == [
            "1 done (1.9 MiB), 1 failed, 1 canceled",
            "  get b.jpg from nas: failed: nas did not answer over tor (peer_unreachable)",
            "  get c.jpg from nas: canceled",
        ])
        #expect(R.summary(TransferWatch([transfer("a", .failed, error: unreachable)]).outcome, now: 0).first == "0 done, 1 failed")
    }

    @Test func tableRows() {
        #expect(R.row(transfer("t1", .active, bytes: 1 << 20)) == ["t1", "active", "get", "nas", "photos/a.jpg", "1.0 MiB/1.9 MiB"])
    }

    @Test func dropLines() {
        let ok = DropResult(key: "K1", file: "a.jpg", from: "u", dropped: true)
        let unsafe = DropResult(key: "K2", file: "b.jpg", from: "u", dropped: false,
                                error: TransferFailure(code: "unsafe_drop", message: "only 0 of 1 other copies verified"))
        let absent = DropResult(key: "K3", file: nil, from: "u", dropped: false, error: TransferFailure(code: "not_present", message: "x"))
        #expect(R.dropLine(ok, from: nil) == "drop a.jpg: ok")
        #expect(R.dropLine(ok, from: "nas") == "drop a.jpg from nas: ok")
        #expect(R.dropLine(unsafe, from: nil) == "drop b.jpg: failed: only 0 of 1 other copies verified (unsafe_drop)")
        #expect(R.dropLine(absent, from: nil) == "drop K3: not present")
        #expect(R.dropSucceeded([ok, absent]))
        #expect(!R.dropSucceeded([ok, unsafe]))
        #expect(R.dropSucceeded([]))
    }

    @Test func boardRedrawsInPlace() {
        var board = TransferBoard(width: 40)
        let first = board.frame(permanent: [], live: ["a 10%", "b 20%"])
        #expect(first == "a 10%\nb 20%\n", "nothing to move over the first time")
        let second = board.frame(permanent: ["get a: done (1 MiB)"], live: ["b 30%"])
        #expect(second == "\r\u{1B}[2A\u{1B}[J" + "get a: done (1 MiB)\n" + "b 30%\n")
        let cut = board.frame(permanent: [], live: [String(repeating: "x", count: 50)])
        #expect(cut == "\r\u{1B}[1A\u{1B}[J" + String(repeating: "x", count: 39) + "\n", "no live line wraps")
        #expect(board.frame(permanent: [], live: []) == "\r\u{1B}[1A\u{1B}[J")
        #expect(board.frame(permanent: ["x"], live: []) == "x\n")
    }

    @Test func boardOfTransfersCapsItsLines() {
        var board = TransferBoard(width: 80, maxLines: 2)
        let ts = (1...5).map { transfer("t\($0)", .queued, file: "f\($0)") }
        let text = board.frame(permanent: [], unsettled: ts, now: 0)
        #expect(text == "get f1  queued\nget f2  queued\n… and 3 more\n")
    }
}

@Suite struct UnsupportedFeatureTests {
    @Test func methodNotFoundBecomesUpgradeIt() {
        let e = RPCError.methodNotFound("transfer.start").unsupported("transfers")
        #expect(e?.message == "this annexd does not support transfers: upgrade it")
        #expect(e?.code == -32601 && e?.reason == "method_not_found" && e?.data["method"] == "transfer.start")
        let event = RPCError.invalidParams(reason: "unknown_event_type", "params.types: transfer.queued is not an event type")
        #expect(event.unsupported("transfers")?.message == "this annexd does not support transfers: upgrade it")
        #expect(event.unsupported("transfers")?.reason == "unknown_event_type")
        #expect(RPCError.invalidParams(reason: "peer_required", "x").unsupported("transfers") == nil)
    }
}
