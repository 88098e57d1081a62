import Testing
@testable import AnnexdKit

/// The drop decision alone: copies, trust levels and lock results in, allowed or refused out.
@Suite struct DropSafetyTests {
    typealias L = DropSafety.Location
    let here = L(uuid: "u-here", name: "here", trust: .semitrusted)
    let a = L(uuid: "u-a", name: "a", trust: .semitrusted)
    let b = L(uuid: "u-b", name: "b", trust: .semitrusted)

    /// Runs the check loop with canned outcomes; returns the safety and the copies it asked about.
    func decide(_ s: DropSafety, _ outcomes: [String: DropSafety.Outcome]) -> (DropSafety, [String]) {
        var s = s, asked: [String] = []
        while let c = s.nextToCheck() {
            asked.append(c.name)
            s.record(c, outcomes[c.uuid] ?? .unreachable("offline"))
        }
        return (s, asked)
    }

    func refusal(_ s: DropSafety) -> String? {
        if case .refused(let why) = s.verdict { return why }
        return nil
    }

    @Test func oneLockedCopyAllowsADropHereWithDefaults() {
        let (s, asked) = decide(DropSafety(numCopies: 1, minCopies: 1, target: here.uuid, locations: [here, a, b]), [a.uuid: .locked])
        #expect(s.verdict == .allowed)
        #expect(asked == ["a"], "stops checking once safe; never checks the copy being dropped")
        #expect(s.lockedCopies == [a])
    }

    @Test func peerOfflineRefuses() {
        let (s, _) = decide(DropSafety(numCopies: 1, minCopies: 1, target: here.uuid, locations: [here, a]), [:])
        let why = refusal(s)
        #expect(why?.contains("could not check: a (offline)") == true, "\(why ?? "allowed")")
        #expect(why?.contains("could only verify 0 of the 1") == true)
    }

    @Test func numcopiesTwoWithOneOtherCopyRefuses() {
        let (s, asked) = decide(DropSafety(numCopies: 2, minCopies: 1, target: here.uuid, locations: [here, a]), [a.uuid: .locked])
        #expect(asked == ["a"])
        let why = refusal(s)
        #expect(why?.contains("could only verify 1 of the 2") == true && why?.contains("locked: a") == true, "\(why ?? "allowed")")
    }

    @Test func presentButUnlockedCountsForNumcopiesNotMincopies() {
        // Two copies checked present, one locked: numcopies 2 and mincopies 1 are met.
        let (ok, _) = decide(DropSafety(numCopies: 2, minCopies: 1, target: here.uuid, locations: [here, a, b]),
                             [a.uuid: .presentNotLocked, b.uuid: .locked])
        #expect(ok.verdict == .allowed)
        // Present only: numcopies 1 is met, mincopies 1 is not (a drop under way there would not show).
        let (s, _) = decide(DropSafety(numCopies: 1, minCopies: 1, target: here.uuid, locations: [here, a]), [a.uuid: .presentNotLocked])
        let why = refusal(s)
        #expect(why?.contains("could lock 0 (locked or trusted) of the 1 copies mincopies requires") == true, "\(why ?? "allowed")")
        #expect(why?.contains("present but could not be locked: a") == true)
        #expect(why?.contains("numcopies requires") == false)
    }

    @Test func mincopiesAboveNumcopiesNeedsThatManyLocks() {
        let (s, _) = decide(DropSafety(numCopies: 1, minCopies: 2, target: here.uuid, locations: [here, a, b]), [a.uuid: .locked])
        #expect(refusal(s)?.contains("could lock 1 (locked or trusted) of the 2 copies mincopies requires") == true)
        let (ok, asked) = decide(DropSafety(numCopies: 1, minCopies: 2, target: here.uuid, locations: [here, a, b]),
                                 [a.uuid: .locked, b.uuid: .locked])
        #expect(ok.verdict == .allowed && asked == ["a", "b"])
    }

    @Test func trustedCopiesCountWithoutContact() {
        let t = L(uuid: "u-t", name: "t", trust: .trusted)
        let (s, asked) = decide(DropSafety(numCopies: 1, minCopies: 1, target: here.uuid, locations: [here, t, a]), [:])
        #expect(s.verdict == .allowed && asked.isEmpty)
    }

    @Test func untrustedCopiesNeverCount() {
        let u = L(uuid: "u-u", name: "u", trust: .untrusted)
        let (s, asked) = decide(DropSafety(numCopies: 1, minCopies: 1, target: here.uuid, locations: [here, u]), [u.uuid: .locked])
        #expect(asked.isEmpty, "an untrusted copy is not even checked")
        #expect(refusal(s)?.contains("untrusted (do not count): u") == true)
    }

    @Test func droppingFromAPeerLocksHereAndNeverCountsThePeer() {
        let (s, asked) = decide(DropSafety(numCopies: 1, minCopies: 1, target: a.uuid, locations: [here, a]), [here.uuid: .locked, a.uuid: .locked])
        #expect(s.verdict == .allowed && asked == ["here"])
        let (alone, _) = decide(DropSafety(numCopies: 1, minCopies: 1, target: a.uuid, locations: [a]), [a.uuid: .locked])
        #expect(refusal(alone)?.contains("no other copies are known") == true)
    }

    @Test func missingAndDuplicateLocationsDoNotCount() {
        let (s, asked) = decide(DropSafety(numCopies: 2, minCopies: 1, target: here.uuid, locations: [here, a, a, b]),
                                [a.uuid: .locked, b.uuid: .missing])
        #expect(asked == ["a", "b"])
        let why = refusal(s)
        #expect(why?.contains("no longer there: b") == true && why?.contains("could only verify 1 of the 2") == true, "\(why ?? "allowed")")
    }

    @Test func settingsBelowOneCountAsOne() {
        let s = DropSafety(numCopies: 0, minCopies: 0, target: here.uuid, locations: [here])
        #expect(s.numCopies == 1 && s.minCopies == 1 && !s.isSafe)
    }
}
