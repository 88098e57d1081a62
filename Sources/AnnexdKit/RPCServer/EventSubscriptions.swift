import Foundation
import Shared

/// `events.subscribe`: a snapshot (without `since`) or the kept events after `since`, then
/// live events, as `event` notifications on the caller's connection, paced by the reader
/// (`EventFeed`); a subscriber that falls behind the ring gets `event.overflow` with where to resume.
enum EventSubscriptions {
    static func subscribe(_ params: EventsSubscribe.Params, _ caller: RPCCaller, _ daemon: Daemon) throws -> EventsSubscribe.Result {
        let events = daemon.events
        let conn = caller.connection
        let latest = events.latestID
        if let since = params.since, UInt64(since) > latest {
            throw RPCError(.invalidState, message: "event \(since) has not happened in this boot (latest is \(latest)); resubscribe without since",
                           reason: "unknown_event_id", details: ["latest": .int(Int64(latest)), "boot": .string(events.boot)])
        }
        if let unknown = params.types?.first(where: { !EventCatalogue.types.contains($0) }) {
            throw RPCError.invalidParams(reason: "unknown_event_type",
                                         "params.types: \(unknown) is not an event type (e.g. \(RepoAdded.type)); docs/API.md lists them all",
                                         details: ["type": .string(unknown)])
        }
        let types = params.types.map(Set.init)
        let snapshot = params.since == nil ? try snapshot(daemon, latest: latest) : nil
        let from = params.since.map(UInt64.init) ?? latest
        conn.afterReply {
            let feed = conn.makeFeed(log: events, after: from, types: types)
            if let snapshot { feed.send(snapshot) }
            do {
                let id = try events.subscribe(since: from, types: types) { delivery in
                    switch delivery {
                    case .event(let e): return feed.offer(e)
                    // The feed wrote its own overflow before refusing an event.
                    case .overflow: return false
                    }
                }
                if let old = conn.setSubscription((id, feed)) { events.unsubscribe(old) }
            } catch {
                conn.write(overflow(resumeFrom: from, boot: events.boot,
                                    "events after \(from) are no longer kept (\(error)); resubscribe without since for a snapshot"))
            }
        }
        // Without since the snapshot (id `latest`) comes first, whatever the types.
        let replayThrough = params.since == nil ? latest : events.lastKept(after: from, through: latest, types: types)
        return EventsSubscribe.Result(boot: events.boot, latest: Int(latest), replayThrough: replayThrough.map(Int.init))
    }

    static func overflow(resumeFrom: UInt64, boot: String, _ message: String) -> [UInt8] {
        RPCNotification(method: "event.overflow", params: .object([
            "resume_from": .int(Int64(resumeFrom)), "boot": .string(boot), "message": .string(message)])).json.serializedBytes()
    }

    /// The `snapshot` event: its id is the latest event's, so a client resumes from there.
    static func snapshot(_ daemon: Daemon, latest: UInt64) throws -> [UInt8] {
        let e = EventSnapshot(repos: try daemon.repos.list(), connections: daemon.repos.connectionCount)
        return EventLog.Event(id: latest, boot: daemon.events.boot, type: EventSnapshot.type, fields: e.values,
                              time: Date().timeIntervalSince1970).notification
    }
}
