import Testing
import Shared

struct PairDataTests {
    static let half = String(repeating: "0123456789abcdef", count: 4)
    static let onion = "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid.onion"

    @Test func serializesAsGitAnnexDoes() throws {
        let d = PairData(halfToken: Self.half, addresses: ["tor-annex::\(Self.onion):1234"])
        #expect(String(decoding: d.serialized, as: UTF8.self) == "\(Self.half)\ntor-annex::\(Self.onion):1234\n")
        #expect(try PairData(parsing: d.serialized) == d)
        #expect(PairData.newHalfToken().utf8.count == 64)
    }

    @Test func readsNewerPeersAndRefusesJunk() throws {
        let newer = "\(Self.half)\ntor-annex::\(Self.onion):1\np2p-annex::yggdrasil:200:abcd\n"
        let d = try PairData(parsing: Array(newer.utf8))
        #expect(d.addresses.count == 1 && d.otherAddresses == ["p2p-annex::yggdrasil:200:abcd"])
        #expect(throws: PairData.ParseError.badHalfToken) { try PairData(parsing: Array("short\ntor-annex::\(Self.onion):1\n".utf8)) }
        // 64 characters, but not hex: refused before it can become part of a token.
        let notHex = String(repeating: "g", count: 64)
        #expect(throws: PairData.ParseError.badHalfToken) { try PairData(parsing: Array("\(notHex)\ntor-annex::\(Self.onion):1\n".utf8)) }
        #expect(throws: PairData.ParseError.self) { try PairData(parsing: Array("\(Self.half)\nhello\n".utf8)) }
        // CR is not stripped (git-annex on POSIX): such a line is not an address.
        #expect(throws: PairData.ParseError.self) { try PairData(parsing: Array("\(Self.half)\ntor-annex::\(Self.onion):1\r\n".utf8)) }
        #expect(throws: PairData.ParseError.noAddress) { try PairData(parsing: Array("\(Self.half)\n".utf8)) }
    }
}
