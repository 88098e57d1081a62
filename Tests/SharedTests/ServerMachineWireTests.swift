import Testing
import TranscriptSupport
@testable import Shared

/// The replies P2PServerMachine decides from the shell's results: what a GET of absent or
/// present content sends, VALID/INVALID per version, an oversize partial, CONNECTDONE, and
/// a line the shell could not read.
@Suite struct ServerMachineWireTests {
    static let key = Content.key("small.txt")   // 6 bytes

    static func ready(version: Int) -> P2PServerMachine {
        var m = P2PServerMachine(config: .init(serverUUID: "s", preauthenticated: true))
        _ = m.receive(.version(version))
        return m
    }

    @Test(arguments: [0, 1, 4])
    func getOfAbsentContentSendsEmptyData(version v: Int) {
        var m = Self.ready(version: v)
        #expect(m.receive(.get(offset: 0, file: "", key: Self.key)) == [.local(.openContent(Self.key, offset: 0))])
        #expect(m.complete(.contentAbsent) == [.send(.data(length: 0))] + (v >= 1 ? [.send(.invalid)] : []))
        #expect(m.receive(.failure) == [] && !m.isClosed)
    }

    @Test(arguments: [0, 1, 4])
    func getOfPresentContentAnnouncesAndValidates(version v: Int) {
        var m = Self.ready(version: v)
        _ = m.receive(.get(offset: 2, file: "", key: Self.key))
        #expect(m.complete(.contentOpened(size: 6))
                == [.send(.data(length: 4)), .local(.streamContent(Self.key, offset: 2, length: 4))])
        #expect(m.complete(.contentStreamed(complete: true, unchanged: false)) == (v >= 1 ? [.send(.invalid)] : []))
        #expect(m.receive(.success) == [])
    }

    @Test func getFromPastTheEndSendsNothing() {
        var m = Self.ready(version: 1)
        _ = m.receive(.get(offset: 99, file: "", key: Self.key))
        #expect(m.complete(.contentOpened(size: 6))
                == [.send(.data(length: 0)), .local(.streamContent(Self.key, offset: 6, length: 0))])
        #expect(m.complete(.contentStreamed(complete: true, unchanged: true)) == [.send(.valid)])
    }

    @Test func contentThatShrankEndsTheSession() {
        var m = Self.ready(version: 4)
        _ = m.receive(.get(offset: 0, file: "", key: Self.key))
        _ = m.complete(.contentOpened(size: 6))
        let actions = m.complete(.contentStreamed(complete: false, unchanged: false))
        #expect(actions.count == 1 && { if case .close = actions[0] { return true }; return false }())
        #expect(m.isClosed)
    }

    @Test func putResumesFromAPartialUnlessItIsTooLong() {
        var m = Self.ready(version: 4)
        _ = m.receive(.put(file: "", key: Self.key))
        #expect(m.complete(.putCandidate(present: false, partialSize: 4)) == [.send(.putFrom(offset: 4))])
        _ = m.receive(.data(length: 2))
        _ = m.complete(.received(complete: true))
        _ = m.receive(.valid)
        _ = m.complete(.stored(true))

        _ = m.receive(.put(file: "", key: Self.key))
        #expect(m.complete(.putCandidate(present: false, partialSize: 7))
                == [.effect(.discardPartial(Self.key)), .send(.putFrom(offset: 0))])
        _ = m.receive(.error("bye"))

        var n = Self.ready(version: 4)
        _ = n.receive(.put(file: "", key: Self.key))
        #expect(n.complete(.putCandidate(present: true, partialSize: 0)) == [.send(.alreadyHave)])
        #expect(n.receive(.checkPresent(Self.key)) == [.local(.checkPresent(Self.key))])
    }

    @Test func connectEndsWithConnectDone() {
        var m = Self.ready(version: 1)
        #expect(m.receive(.connect(service: "git-upload-pack")) == [.local(.connect(service: "git-upload-pack"))])
        #expect(m.complete(.serviceFinished(exitCode: 128))
                == [.send(.connectDone(exitCode: 128)), .close("service finished")])
        #expect(m.isClosed)
    }

    @Test func anUnreadableLineIsAnsweredAndEndsTheSession() {
        var m = Self.ready(version: 1)
        let why = LineBuffer.LineError.tooLong.description
        #expect(m.receiveUnreadable(why) == [.send(.error(why)), .close(why)])
        #expect(m.isClosed && m.receiveUnreadable(why).isEmpty)
    }
}
