import Foundation
import Testing

/// `make test` (as root) promises, through ANNEXD_TESTS_ONLY_LO=1, that its second pass runs
/// where lo is the only interface; this holds it to that, so the transit and pairing suites
/// (enabled only there) cannot go quietly unrun.
@Suite(.timeLimit(minutes: 1)) struct NetworkIsolationTests {
    static let promised = ProcessInfo.processInfo.environment["ANNEXD_TESTS_ONLY_LO"] == "1"

    @Test(.enabled(if: promised, "checks the namespace only where make test promises one with only lo (as root; ANNEXD_TESTS_ONLY_LO=1)"))
    func thePromisedNamespaceHasOnlyLoopback() {
        #expect(NetworkIsolation.onlyLoopback, "interfaces here: \(NetworkIsolation.interfaces), lo up: \(NetworkIsolation.loopbackUp)")
    }
}
