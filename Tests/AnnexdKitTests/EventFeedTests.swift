import Foundation
import Shared
import Synchronization
import Testing
@testable import AnnexdKit

/// A connection's event feed against a client that reads at its own pace: the writes the feed
/// makes are recorded, and "the client reads" completes them.
@Suite struct EventFeedTests {
    final class Client: @unchecked Sendable {
        private let state = Mutex<(written: [[UInt8]], outstanding: [@Sendable () -> Void])>(([], []))
        var sink: EventFeed.Sink {
            { bytes, done in self.state.withLock { $0.written.append(bytes); $0.outstanding.append(done) } }
        }
        /// The notifications written so far, parsed.
        var notifications: [JSONValue] { state.withLock { $0.written }.map { try! JSONValue(parsing: $0) } }
        var eventIDs: [Int64] { notifications.compactMap { $0["method"] == "event" ? $0["params"]?["id"]?.intValue : nil } }
        var overflows: [JSONValue] { notifications.filter { $0["method"] == "event.overflow" } }
        /// The client reads everything written so far; true if there was anything.
        @discardableResult
        func read() -> Bool {
            let done = state.withLock { s in defer { s.outstanding = [] }; return s.outstanding }
            for d in done { d() }
            return !done.isEmpty
        }
        func readUntilIdle() { while read() {} }
    }

    /// Subscribes a feed as `events.subscribe` does.
    static func subscribe(_ log: EventLog, since: UInt64 = 0, types: Set<String>? = nil, _ client: Client) throws -> EventFeed {
        let feed = EventFeed(log: log, after: since, types: types, sink: client.sink)
        _ = try log.subscribe(since: since, types: types) { d in
            if case .event(let e) = d { return feed.offer(e) }
            return false
        }
        return feed
    }

    static let padding = JSONValue.string(String(repeating: "x", count: 200))

    @Test func aClientThatKeepsUpGetsEachEventAsItIsPublished() throws {
        let log = EventLog(capacity: 100)
        let client = Client()
        _ = try Self.subscribe(log, client)
        for i in 1...20 {
            log.publish("t")
            #expect(client.eventIDs.last == Int64(i))
            client.read()
        }
        #expect(client.eventIDs == Array(1...20))
    }

    @Test func aStalledClientCostsAtMostTheHighWaterMark() throws {
        let log = EventLog(capacity: 4096)
        let client = Client()
        let feed = try Self.subscribe(log, client)
        for _ in 0..<3000 { log.publish("t", fields: ["pad": Self.padding]) }
        let oneEvent = log.publish("t", fields: ["pad": Self.padding]).notification.count
        #expect(feed.pendingBytes <= EventFeed.highWater + oneEvent, "\(feed.pendingBytes) bytes held for a client that reads nothing")
        #expect(client.eventIDs.count < 3000 / 4)
    }

    @Test func aBurstWithinTheRingReachesAReaderWholeAndInOrder() throws {
        let log = EventLog(capacity: 4096)
        let client = Client()
        _ = try Self.subscribe(log, client)
        for _ in 0..<3000 { log.publish("t", fields: ["pad": Self.padding]) }
        client.readUntilIdle()
        log.publish("t")
        client.readUntilIdle()
        #expect(client.eventIDs == Array(1...3001))
        #expect(client.overflows.isEmpty)
    }

    @Test func fallingBehindTheRingGivesOneOverflowThenNothing() throws {
        let log = EventLog(capacity: 100)
        let client = Client()
        let feed = try Self.subscribe(log, client)
        for _ in 0..<1000 { log.publish("t", fields: ["pad": Self.padding]) }
        let before = client.eventIDs
        client.readUntilIdle()
        // What was written before it fell behind, then the overflow saying where to resume.
        #expect(client.eventIDs == before && !before.isEmpty)
        #expect(client.overflows.count == 1)
        #expect(client.overflows.first?["params"]?["resume_from"]?.intValue == before.last)
        #expect(feed.ended)
        log.publish("t")
        client.readUntilIdle()
        #expect(client.overflows.count == 1 && client.eventIDs == before)
    }

    @Test func catchingUpKeepsTheTypeFilter() throws {
        let log = EventLog(capacity: 4096)
        let client = Client()
        _ = try Self.subscribe(log, types: ["b"], client)
        for i in 0..<2000 { log.publish(i % 3 == 0 ? "b" : "a", fields: ["pad": Self.padding]) }
        client.readUntilIdle()
        #expect(client.eventIDs == stride(from: 1, through: 2000, by: 3).map { Int64($0) })
        #expect(client.notifications.allSatisfy { $0["params"]?["type"] == "b" })
    }

    @Test func replayAfterSinceIsPacedToo() throws {
        let log = EventLog(capacity: 4096)
        for _ in 0..<2000 { log.publish("t", fields: ["pad": Self.padding]) }
        let client = Client()
        let feed = try Self.subscribe(log, since: 500, client)
        #expect(feed.pendingBytes <= 2 * EventFeed.highWater)
        client.readUntilIdle()
        #expect(client.eventIDs == Array(501...2000))
    }

    @Test func anEndedFeedWritesNothing() throws {
        let log = EventLog(capacity: 100)
        let client = Client()
        let feed = try Self.subscribe(log, client)
        log.publish("t")
        feed.end()
        log.publish("t")
        client.readUntilIdle()
        #expect(client.eventIDs == [1])
    }
}
