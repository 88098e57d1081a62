#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Shared
import Synchronization

extension P2PClient {
    /// A CONNECT relay in which nothing moved either way for `seconds`: the connection was broken off.
    public struct RelayStalled: Error, CustomStringConvertible {
        public let seconds: Double
        public var description: String { "nothing moved either way for \(Int(seconds)) s" }
    }

    /// CONNECT: runs the server's git service (`git-upload-pack`, `git-receive-pack`) for a
    /// local git. What git writes to `input` goes to the service in DATA frames (one per read,
    /// at most 64 KiB); what the service sends is written to `output`; until the server's
    /// CONNECTDONE, whose exit code is returned. The server ends the session after it. When
    /// nothing moves either way for `idleTimeout` (git's services send keepalives every 5 s
    /// while they work), the connection is broken off and `RelayStalled` thrown.
    public func connectService(_ service: String, input: Int32, output: Int32, idleTimeout: Double = 120) throws -> Int {
        // The machine is shared by this thread (the server's frames) and the feeder (git's);
        // the lock also keeps their writes to the connection whole.
        let lock = NSLock()
        let conn = self.conn
        let watchdog = RelayWatchdog(client: self, idleTimeout: idleTimeout)
        defer { watchdog.stop() }
        func perform(_ actions: [P2PClientMachine.Action]) throws -> Int? {
            for action in actions {
                switch action {
                case .send(let m):
                    lock.lock()
                    defer { lock.unlock() }
                    conn.send(m)
                    try conn.flush()
                case .relayToService(let length):
                    let got = try conn.readPayload(count: length) {
                        watchdog.moved()
                        try Posix.writeAll(fd: output, $0, what: "to git")
                    }
                    if got < length { throw ClientError.closed }
                case .finished(.connectDone(let code)):
                    return code
                case .failed(let error):
                    throw error
                default:
                    throw ClientError.unexpected("\(action)", expecting: "DATA or CONNECTDONE")
                }
            }
            return nil
        }
        lock.lock()
        let first = machine.request(.connect(service: service))
        lock.unlock()
        _ = try perform(first)

        let feeder = Thread { [self] in
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buf.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                // End of git's input: stop sending (the service ends on its own; closing our
                // side could make a stock server abandon the relay).
                if n <= 0 { return }
                watchdog.moved()
                lock.lock()
                defer { lock.unlock() }
                guard case .send(let header)? = machine.relayFromService(count: n).first else { return }
                var frame = Array((header.wireLine + "\n").utf8)
                frame += buf[0..<n]
                do { try frame.withUnsafeBytes { try Posix.writeAll(fd: conn.writeFD, $0, what: "to peer") } } catch { return }
            }
        }
        feeder.start()

        while true {
            let line: String?
            do { line = try conn.readLine() } catch {
                throw watchdog.stalled ?? error
            }
            guard let line else {
                lock.lock(); machine.closed(); lock.unlock()
                throw watchdog.stalled ?? ClientError.closed
            }
            watchdog.moved()
            let message: P2PMessage
            do { message = try P2PMessage.parse(line) } catch { message = .error("unparseable reply: \(KeyError.printable(line))") }
            lock.lock()
            let actions = machine.receive(message)
            lock.unlock()
            // The payload is read without the lock: only this thread reads the connection.
            if let code = try perform(actions) { return code }
        }
    }
}

/// Breaks off a CONNECT relay in which nothing moved for a while (the shell's `interrupt`).
final class RelayWatchdog: Sendable {
    private let lastMoved = Mutex<Double>(RateLimiter.now())
    private let state = Mutex<(done: Bool, stalled: Bool)>((false, false))
    let idleTimeout: Double

    init(client: P2PClient, idleTimeout: Double) {
        self.idleTimeout = idleTimeout
        Thread { [self] in
            while true {
                Thread.sleep(forTimeInterval: min(1, idleTimeout / 4))
                let idle = RateLimiter.now() - lastMoved.withLock { $0 }
                let fire = state.withLock { s -> Bool in
                    if s.done { return false }
                    if idle > idleTimeout { s.stalled = true }
                    return s.stalled
                }
                if fire { client.interrupt() }
                if state.withLock({ $0.done || $0.stalled }) { return }
            }
        }.start()
    }

    func moved() { lastMoved.withLock { $0 = RateLimiter.now() } }
    func stop() { state.withLock { $0.done = true } }
    /// The error to report when the relay was broken off for being idle.
    var stalled: P2PClient.RelayStalled? { state.withLock { $0.stalled } ? P2PClient.RelayStalled(seconds: idleTimeout) : nil }
}
