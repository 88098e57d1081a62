import Testing
@testable import Shared

@Suite struct AuthTokenTests {
    @Test func generatedTokensAreValidAndDistinct() {
        let a = AuthToken.generate(), b = AuthToken.generate()
        #expect(a.value.utf8.count == 128 && Hex.isLowerHex(a.value))
        #expect(a != b)
    }

    @Test(arguments: ["", " ", String(repeating: "a", count: 127), String(repeating: "A", count: 128),
                      String(repeating: "g", count: 128), String(repeating: "a", count: 129)])
    func malformedTokensAreRefused(text: String) {
        #expect(AuthToken(text) == nil)
    }

    @Test func fileAcceptsOnlyValidTokens() {
        let t1 = AuthToken.generate(), t2 = AuthToken.generate()
        var f = P2PAuthFile(text: "\(t1.value)\n\n   \nnot-a-token\n\(t2.value) tor-annex::abc.onion:5000\n")
        #expect(f.tokens == [t1, t2])
        #expect(f.accepts(t2.value) == t2)
        #expect(f.accepts("") == nil)
        #expect(f.accepts(" ") == nil)
        #expect(f.accepts(AuthToken.generate().value) == nil)
        let removed = f.remove(t1)
        #expect(removed)
        #expect(f.accepts(t1.value) == nil)
        // Lines that are not tokens are kept as they were.
        #expect(f.text == "\n   \nnot-a-token\n\(t2.value) tor-annex::abc.onion:5000\n")
        f.add(t1, address: "tor-annex::x.onion:1")
        #expect(f.accepts(t1.value) == t1)
    }
}
