import Shared
import Testing

@Suite struct TorAnnexAddressTests {
    static let onion = "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid.onion"
    static let token = String(repeating: "ab", count: 64)

    @Test func parsesAndFormatsWithAndWithoutToken() throws {
        let plain = try TorAnnexAddress(parsing: "tor-annex::\(Self.onion):1234")
        #expect(plain.onion == Self.onion && plain.port == 1234 && plain.token == nil)
        #expect(plain.address == "tor-annex::\(Self.onion):1234")
        #expect(plain.addressWithToken == plain.address)

        let full = try TorAnnexAddress(parsing: "  tor-annex::\(Self.onion.uppercased()):80:\(Self.token)\n", token: .required)
        #expect(full.onion == Self.onion, "onions are kept lowercase")
        #expect(full.token?.value == Self.token)
        #expect(full.addressWithToken == "tor-annex::\(Self.onion):80:\(Self.token)")
        #expect(full.withoutToken == TorAnnexAddress(onion: Self.onion, port: 80))
        #expect(!"\(full)".contains(Self.token), "printing an address never shows its token")
        #expect(TorAnnexAddress.isAddress("tor-annex::\(Self.onion):1"))
        #expect(!TorAnnexAddress.isAddress("tor-annex::\(Self.onion):1:\(Self.token)"))
    }

    @Test(arguments: [
        ("tor-annex:\(onion):1", TorAnnexAddress.TokenRule.optional, "does not start with tor-annex::"),
        ("p2p-annex::\(onion):1", .optional, "does not start with tor-annex::"),
        ("tor-annex::\(onion)", .optional, "not 2 or 3"),
        ("tor-annex::\(onion):1", .required, "not 3"),
        ("tor-annex::\(onion):1:\(token)", .forbidden, "not 2"),
        ("tor-annex::\(onion):1:\(token):x", .optional, "not 2 or 3"),
        ("tor-annex::abc.onion:1", .optional, "not a v3 onion address"),
        ("tor-annex::\(onion.dropLast(6)):1", .optional, "not a v3 onion address"),
        ("tor-annex::25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sia.onion:1", .optional, "not a v3 onion address"),
        ("tor-annex::\(onion):0", .optional, "not a port number"),
        ("tor-annex::\(onion):65536", .optional, "not a port number"),
        ("tor-annex::\(onion):http", .optional, "not a port number"),
        ("tor-annex::\(onion):1:\(token.uppercased())", .optional, "not 128 lowercase hex"),
        ("tor-annex::\(onion):1:\(token.dropLast())", .optional, "not 128 lowercase hex"),
        ("tor-annex::\(onion):1:", .optional, "not 128 lowercase hex"),
    ])
    func refusesWithTheReason(text: String, rule: TorAnnexAddress.TokenRule, problem: String) {
        #expect {
            try TorAnnexAddress(parsing: text, token: rule)
        } throws: { error in
            "\(error)".contains(problem)
        }
    }
}

@Suite struct PeerNameTests {
    @Test(arguments: ["a", "peer1", "laptop-2", "nas_backup", "x.y", String(repeating: "z", count: 64)])
    func accepts(name: String) throws {
        #expect(try PeerName(name).value == name)
    }

    @Test(arguments: ["", " ", "a b", "a/b", "../x", ".hidden", "-rf", "naïve", "a:b", "a\nb", String(repeating: "z", count: 65)])
    func refuses(name: String) {
        #expect(throws: PeerName.InvalidName.self) { try PeerName(name) }
        #expect(!PeerName.isValid(name))
    }

    @Test func defaultNamesFollowGitAnnex() {
        #expect(PeerName.unused(among: []).value == "peer1")
        #expect(PeerName.unused(among: ["peer1", "peer2", "peer4"]).value == "peer3")
        #expect(PeerName.unused(among: ["origin"]).value == "peer1")
    }
}
