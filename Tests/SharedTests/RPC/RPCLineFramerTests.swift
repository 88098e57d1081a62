import Testing
@testable import Shared

/// The RPC server's line framing (BoundedLineDecoder asks RPCLineFramer where lines end).
@Suite struct RPCLineFramerTests {
    @Test func linesEndAtNewlineAndLoseACarriageReturn() throws {
        var f = RPCLineFramer(maxLength: 16)
        let bytes = Array("{}\r\n[1]\n\n".utf8)
        #expect(try f.nextLine(in: bytes[...])! == (2, 4))
        #expect(try f.nextLine(in: bytes[4...])! == (3, 4))
        #expect(try f.nextLine(in: bytes[8...])! == (0, 1))
        #expect(try f.nextLine(in: bytes[9...]) == nil)
    }

    @Test func aLineLongerThanTheLimitIsRefusedBeforeItsNewline() throws {
        var f = RPCLineFramer(maxLength: 4)
        #expect(try f.nextLine(in: Array("abcd".utf8)) == nil)
        #expect(throws: RPCLineFramer.LineTooLong.self) { try f.nextLine(in: Array("abcde".utf8)) }
        var g = RPCLineFramer(maxLength: 4)
        #expect(throws: RPCLineFramer.LineTooLong.self) { try g.nextLine(in: Array("abcde\n".utf8)) }
        // The limit counts the line without its newline; a CR counts (it is stripped after).
        var h = RPCLineFramer(maxLength: 4)
        #expect(try h.nextLine(in: Array("abc\r\n".utf8))! == (3, 5))
    }

    @Test func scanningResumesWhereItStopped() throws {
        var f = RPCLineFramer(maxLength: 64)
        var input = Array("{\"a\":".utf8)
        #expect(try f.nextLine(in: input) == nil)
        input += Array("1}\n".utf8)
        #expect(try f.nextLine(in: input)! == (7, 8))
    }
}
