#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import Testing
@testable import AnnexdKit
@testable import Shared

/// Event subscribers that read slowly or not at all, on a real annexd: a burst of thousands of
/// events (one transfer.start of 2000 keys) reaches a client that reads, whole and in order;
/// twenty clients that read nothing cost the daemon little memory; when they read at last they
/// get what they missed up to where the ring ends, then one `event.overflow` saying where to
/// resume; and the daemon keeps answering meanwhile.
@Suite(.serialized, .timeLimit(minutes: 5)) struct SlowSubscriberTests {
    /// A raw RPC connection that subscribed to events.
    final class Subscriber: @unchecked Sendable {
        let fd: Int32
        init(_ socket: String, receiveBuffer: Int32? = nil) throws {
            fd = try UnixSocket.connect(socket)
            if var size = receiveBuffer {
                setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            }
            let request = Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\",\"params\":{\"since\":0}}\n".utf8)
            _ = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        }
        deinit { close(fd) }

        /// Reads lines until `done` says stop or `timeout` seconds pass without any byte.
        func readLines(timeout: Double, until done: ([JSONValue]) -> Bool = { _ in false }) -> [JSONValue] {
            var lines: [JSONValue] = []
            var partial: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 65536)
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            while !done(lines), poll(&p, 1, Int32(timeout * 1000)) > 0 {
                let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                for b in buf[0..<n] {
                    if b == 10 { if let v = try? JSONValue(parsing: partial) { lines.append(v) }; partial = [] } else { partial.append(b) }
                }
            }
            return lines
        }
    }

    static func eventIDs(_ lines: [JSONValue]) -> [Int64] {
        lines.compactMap { $0["method"] == "event" ? $0["params"]?["id"]?.intValue : nil }
    }

    @Test func slowAndStalledSubscribersCostLittleAndMissNothingTheRingKeeps() throws {
        let f = try TransferFixture(files: ["a": 10])
        let process = f.daemon.process
        let stalled = try (0..<20).map { _ in try Subscriber(f.daemon.socket, receiveBuffer: 4096) }
        let reader = try Subscriber(f.daemon.socket)
        usleep(300_000)
        let rssBefore = try process.residentBytes()

        let keys = (0..<2000).map { i in JSONValue.string("SHA256E-s100--" + String(format: "%064x", i)) }
        let started = try #require(try process.call("transfer.start", .object([
            "repo": .string(f.client), "direction": "get", "keys": .array(keys), "peer": "peer"]))["transfers"]?.arrayValue)
        #expect(started.count == 2000)

        // The reader gets every event up to the latest, in order, with no overflow.
        var latest: Int64 = 0
        var got: [JSONValue] = []
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            got += reader.readLines(timeout: 1) { _ in false }
            latest = try process.call("daemon.status")["latest_event"]?.intValue ?? 0
            if latest > 6000, Self.eventIDs(got).last == latest { break }
        }
        let ids = Self.eventIDs(got)
        #expect(latest > 6000, "only \(latest) events: the burst is too small to show anything")
        #expect(ids.first == 1 && ids == Array(1...(ids.last ?? 0)), "the reader's events have a gap or are out of order")
        #expect(ids.last == latest)
        #expect(!got.contains { $0["method"] == "event.overflow" })

        // Twenty clients that read nothing hold little of the daemon's memory.
        let rssAfter = try process.residentBytes()
        #expect(!TestEnvironment.checksResidentSize || rssAfter - rssBefore < 32 << 20, "RSS grew \((rssAfter - rssBefore) >> 20) MiB with 20 stalled subscribers")
        let t0 = Date()
        _ = try process.call("daemon.status")
        #expect(Date().timeIntervalSince(t0) < 1)

        // A stalled client, reading at last: events in order from the first, then one overflow
        // naming the last one it got (the ring has moved on), then nothing.
        let late = stalled[0].readLines(timeout: 2)
        let lateIDs = Self.eventIDs(late)
        let overflows = late.filter { $0["method"] == "event.overflow" }
        #expect(!lateIDs.isEmpty && lateIDs == Array(1...(lateIDs.last ?? 0)))
        #expect(overflows.count == 1)
        #expect(overflows.first?["params"]?["resume_from"]?.intValue == lateIDs.last)
        #expect(late.last?["method"] == "event.overflow")
    }
}
