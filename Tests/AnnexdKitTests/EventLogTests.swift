import Shared
import Synchronization
import Testing
@testable import AnnexdKit

@Suite struct EventLogTests {
    final class Sink: @unchecked Sendable {
        let got = Mutex<[EventLog.Delivery]>([])
        let capacity: Int
        init(capacity: Int = .max) { self.capacity = capacity }
        var deliveries: [EventLog.Delivery] { got.withLock { $0 } }
        var ids: [UInt64] { deliveries.compactMap { if case .event(let e) = $0 { return e.id }; return nil } }
        func deliver(_ d: EventLog.Delivery) -> Bool {
            got.withLock { list in
                if case .event = d, list.count >= capacity { return false }
                list.append(d)
                return true
            }
        }
    }

    @Test func idsAreGaplessAndReplayedFromSince() throws {
        let log = EventLog(capacity: 10)
        for i in 1...5 { #expect(log.publish("t", fields: ["n": .int(Int64(i))]).id == UInt64(i)) }
        let sink = Sink()
        _ = try log.subscribe(since: 2, types: nil, deliver: sink.deliver)
        log.publish("t")
        #expect(sink.ids == [3, 4, 5, 6])
        #expect(log.latestID == 6)
    }

    @Test func typesFilter() throws {
        let log = EventLog()
        let sink = Sink()
        _ = try log.subscribe(since: 0, types: ["b"], deliver: sink.deliver)
        log.publish("a"); log.publish("b"); log.publish("a"); log.publish("b")
        #expect(sink.ids == [2, 4])
    }

    @Test func lastKeptIsTheNewestOfTheTypesAfterAnIdUpToAnother() {
        let log = EventLog(capacity: 4)
        #expect(log.lastKept(after: 0, through: 0, types: nil) == nil)
        for t in ["a", "b", "a", "b", "b", "c"] { log.publish(t) }   // ids 1...6; 3...6 are kept
        #expect(log.lastKept(after: 0, through: 6, types: nil) == 6)
        #expect(log.lastKept(after: 0, through: 6, types: ["a"]) == 3)
        #expect(log.lastKept(after: 3, through: 6, types: ["a"]) == nil)
        #expect(log.lastKept(after: 2, through: 5, types: ["b", "c"]) == 5)
        #expect(log.lastKept(after: 0, through: 4, types: ["c"]) == nil)
        #expect(log.lastKept(after: 6, through: 6, types: nil) == nil)
    }

    @Test func sinceOlderThanTheRingIsRefusedWithTheOldestID() {
        let log = EventLog(capacity: 3)
        for _ in 1...10 { log.publish("t") }
        #expect(throws: EventLog.SubscribeError.tooOld(oldest: 8)) { try log.subscribe(since: 2, types: nil) { _ in true } }
        // Exactly at the edge: events 8...10 are all still there.
        let sink = Sink()
        _ = try? log.subscribe(since: 7, types: nil, deliver: sink.deliver)
        #expect(sink.ids == [8, 9, 10])
    }

    @Test func sinceInTheFutureIsRefused() {
        let log = EventLog()
        log.publish("t")
        #expect(throws: EventLog.SubscribeError.unknownID(latest: 1)) { try log.subscribe(since: 5, types: nil) { _ in true } }
    }

    @Test func aConsumerThatFallsBehindIsToldWhereToResume() throws {
        let log = EventLog(capacity: 100)
        let slow = Sink(capacity: 3)
        _ = try log.subscribe(since: 0, types: nil, deliver: slow.deliver)
        for _ in 1...6 { log.publish("t") }
        #expect(slow.ids == [1, 2, 3])
        #expect(slow.deliveries.last == .overflow(resumeFrom: 3))
        // Resuming from there misses nothing.
        let again = Sink()
        _ = try log.subscribe(since: 3, types: nil, deliver: again.deliver)
        #expect(again.ids == [4, 5, 6])
    }

    @Test func unsubscribeStopsDelivery() throws {
        let log = EventLog()
        let sink = Sink()
        let id = try log.subscribe(since: nil, types: nil, deliver: sink.deliver)
        log.publish("t")
        log.unsubscribe(id)
        log.publish("t")
        #expect(sink.ids == [1])
    }
}
