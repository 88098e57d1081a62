import Foundation
import Shared
import Synchronization

/// The daemon's event stream: every event gets the next id (gapless, from 1,
/// within one boot) and the boot id; the last `capacity` events are kept so a
/// consumer can resume with `since`. A subscriber that cannot take an event is told
/// where to resume and dropped, never silently skipped; RPC clients pull at their own
/// pace from the ring (`EventFeed`) and overflow only when it has moved past them.
public final class EventLog: Sendable {
    /// An event as kept and delivered: its envelope, and the JSON-RPC `event` notification
    /// that carries it, serialized once when published (the ring keeps bytes, not a JSON tree,
    /// and subscribers are sent the same bytes).
    public struct Event: Sendable, Equatable {
        public let id: UInt64
        public let boot: String
        public let type: String
        public let time: Double
        /// The notification's bytes: envelope (id, boot, type, time), then the declared fields.
        public let notification: [UInt8]

        public init(id: UInt64, boot: String, type: String, fields: JSONObject, time: Double) {
            self.id = id
            self.boot = boot
            self.type = type
            self.time = time
            var params: JSONObject = ["id": .int(Int64(id)), "boot": .string(boot), "type": .string(type), "time": .double(time)]
            for (k, v) in fields { params[k] = v }
            notification = RPCNotification.event(params).json.serializedBytes()
        }

        /// The notification's params (envelope and fields), read back from its bytes: for the
        /// daemon's own few subscribers (the ring keeps only the bytes).
        public var params: JSONObject {
            (try? JSONValue(parsing: notification))?["params"]?.objectValue ?? [:]
        }
    }

    public enum Delivery: Sendable, Equatable {
        case event(Event)
        /// The subscriber fell behind: it must resubscribe with `since: resumeFrom`.
        case overflow(resumeFrom: UInt64)
    }

    public enum SubscribeError: Error, Equatable, Sendable {
        /// `since` is older than the ring keeps; the oldest replayable id is given.
        case tooOld(oldest: UInt64)
        /// `since` is in the future for this boot.
        case unknownID(latest: UInt64)
    }

    public let boot: String
    public let capacity: Int
    private struct State {
        var ring: [Event] = []
        var start = 0
        var nextID: UInt64 = 1
        var subscribers: [UInt64: Subscriber] = [:]
        var nextSubscriber: UInt64 = 1
    }
    private let state: Mutex<State>
    /// The latest id, readable without the lock (a feed checks it while holding its own lock,
    /// which publishing takes inside this log's).
    private let latest = Atomic<UInt64>(0)

    public init(capacity: Int = 4096, boot: String = UUID().uuidString.lowercased()) {
        self.capacity = capacity
        self.boot = boot
        state = Mutex(State())
    }

    /// A live subscription: `deliver` is called (on the publisher's thread) for each
    /// event; it must not block. It returns false when its queue is full.
    public final class Subscriber: @unchecked Sendable {
        let types: Set<String>?
        let deliver: @Sendable (Delivery) -> Bool
        init(types: Set<String>?, deliver: @escaping @Sendable (Delivery) -> Bool) {
            self.types = types
            self.deliver = deliver
        }
        func wants(_ e: Event) -> Bool { types?.contains(e.type) ?? true }
    }

    /// Publishes a declared event: the only way in for the daemon.
    @discardableResult
    public func publish<E: AnnexdEvent>(_ event: E) -> Event {
        publish(E.type, fields: event.values)
    }

    /// Any type and fields: for this log's own tests.
    @discardableResult
    func publish(_ type: String, fields: JSONObject = [:]) -> Event {
        var dropped: [(Subscriber, UInt64)] = []
        let event: Event = state.withLock { s in
            let e = Event(id: s.nextID, boot: boot, type: type, fields: fields, time: Date().timeIntervalSince1970)
            s.nextID += 1
            latest.store(e.id, ordering: .releasing)
            if s.ring.count < capacity {
                s.ring.append(e)
            } else {
                s.ring[s.start] = e
                s.start = (s.start + 1) % capacity
            }
            for (id, sub) in s.subscribers where sub.wants(e) {
                if !sub.deliver(.event(e)) {
                    s.subscribers[id] = nil
                    dropped.append((sub, e.id))
                }
            }
            return e
        }
        for (sub, id) in dropped { _ = sub.deliver(.overflow(resumeFrom: id - 1)) }
        return event
    }

    public var latestID: UInt64 { latest.load(ordering: .acquiring) }

    /// What the ring still holds after an id.
    public enum Kept: Sendable, Equatable {
        /// Kept events after the id (those of `types`, at most about `maxBytes` of them but at
        /// least one), and the id of the last event looked at, wanted or not.
        case events([Event], scannedTo: UInt64)
        /// Events right after the id are gone from the ring; `oldest` is the first one kept.
        case evicted(oldest: UInt64)
    }

    /// Kept events after `id`, for a subscriber pulling at its own pace (`EventFeed`).
    public func kept(after id: UInt64, types: Set<String>?, maxBytes: Int) -> Kept {
        state.withLock { s in
            let count = s.ring.count
            guard count > 0 else { return .events([], scannedTo: id) }
            let oldest = s.ring[s.start].id
            if id + 1 < oldest { return .evicted(oldest: oldest) }
            var found: [Event] = []
            var bytes = 0, scanned = id
            var k = Int(id + 1 - oldest)
            while k < count {
                let e = s.ring[(s.start + k) % count]
                if types?.contains(e.type) ?? true {
                    if !found.isEmpty && bytes + e.notification.count > maxBytes { break }
                    found.append(e)
                    bytes += e.notification.count
                }
                scanned = e.id
                k += 1
            }
            return .events(found, scannedTo: scanned)
        }
    }

    /// The id of the newest kept event after `id`, at most `through`, of `types` (any when nil);
    /// nil when there is none.
    public func lastKept(after id: UInt64, through: UInt64, types: Set<String>?) -> UInt64? {
        state.withLock { s in
            let count = s.ring.count
            var k = count - 1
            while k >= 0 {
                let e = s.ring[(s.start + k) % count]
                if e.id <= id { return nil }
                if e.id <= through && (types?.contains(e.type) ?? true) { return e.id }
                k -= 1
            }
            return nil
        }
    }

    /// Replays events after `since` (all kept events when nil), then streams new
    /// ones; replay and registration happen atomically, so nothing falls between.
    public func subscribe(since: UInt64?, types: Set<String>?,
                          deliver: @escaping @Sendable (Delivery) -> Bool) throws(SubscribeError) -> UInt64 {
        let sub = Subscriber(types: types, deliver: deliver)
        return try state.withLock { s throws(SubscribeError) -> UInt64 in
            let ordered = Array(s.ring[s.start...] + s.ring[..<s.start])
            let oldest = ordered.first?.id ?? s.nextID
            if let since {
                if since > s.nextID - 1 { throw .unknownID(latest: s.nextID - 1) }
                if since + 1 < oldest { throw .tooOld(oldest: oldest) }
            }
            for e in ordered where e.id > (since ?? 0) && sub.wants(e) {
                if !sub.deliver(.event(e)) { _ = sub.deliver(.overflow(resumeFrom: e.id - 1)); return 0 }
            }
            let id = s.nextSubscriber
            s.nextSubscriber += 1
            s.subscribers[id] = sub
            return id
        }
    }

    public func unsubscribe(_ id: UInt64) {
        _ = state.withLock { $0.subscribers.removeValue(forKey: id) }
    }
}
