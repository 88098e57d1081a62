#if canImport(Glibc)
import Glibc
#endif
import Shared

/// The I/O shell around `P2PClientMachine`: talks to a P2P server over a
/// connection, moving content between it and the local object store.
/// Used by annexd to reach stock git-annex peers and other annexd peers.
/// One thread uses it at a time (a transfer, then the idle pool hands it on); only
/// `interrupt()` may be called from another thread.
public final class P2PClient: @unchecked Sendable {
    public let conn: FDConnection
    let store: ObjectStore?
    var machine = P2PClientMachine()
    public private(set) var serverUUID: String?
    public var version: Int { machine.version }
    private var incoming: IncomingContent?
    private var child: ChildProcess?
    private var fdClosed = false
    /// Why the last received content was not stored (checksum mismatch, disk full, …).
    public private(set) var lastStoreError: Error?
    /// The last GET was answered with an empty DATA marked INVALID: the peer has no such content.
    public private(set) var peerLacksContent = false
    private var lastDataLength: Int64 = -1
    /// Fault injection for tests: the connection "breaks" after this many payload bytes arrive.
    var receiveLimit: Int64?
    /// Told where a content transfer stands: DATA starting at an offset (a resume when > 0), then verifying.
    public var onStage: ((Stage) -> Void)?

    public enum Stage: Equatable, Sendable {
        case data(offset: Int64)
        case verifying
    }

    public typealias ClientError = P2PClientMachine.ClientError

    /// Closes the connection's descriptor on `close()` (a socket the client was given to own).
    private let ownsFD: Bool

    /// `store` is the local repository content moves into (get) or out of (put).
    public init(connection: FDConnection, store: ObjectStore?, ownsFD: Bool = false) {
        self.conn = connection
        self.store = store
        self.ownsFD = ownsFD
    }

    /// From another thread: breaks the connection, so a request blocked on it fails at once
    /// (cancel, pause, a stall). The caller still calls `close()`.
    public func interrupt() {
        shutdown(conn.readFD, Int32(SHUT_RDWR))
    }

    /// Runs `command` (e.g. `git-annex-shell p2pstdio DIR UUID`, or `annexd p2p-stdio DIR`) and talks to it.
    public static func spawn(_ command: [String], store: ObjectStore?, cwd: String? = nil) throws -> P2PClient {
        let child = try ChildProcess(command, cwd: cwd)
        let client = P2PClient(connection: FDConnection(readFD: child.stdoutFD, writeFD: child.stdinFD), store: store)
        client.child = child
        return client
    }

    /// Authenticates (or, for p2pstdio, waits for AUTH-SUCCESS) and negotiates the version.
    @discardableResult
    public func connect(clientUUID: String? = nil, token: String? = nil) throws -> String {
        guard case .connected(let uuid, _) = try run(machine.start(clientUUID: clientUUID, token: token)) else {
            throw ClientError.unexpected("no AUTH-SUCCESS", expecting: "AUTH-SUCCESS")
        }
        serverUUID = uuid
        return uuid
    }

    public func checkPresent(_ key: AnnexKey) throws -> Bool {
        try bool(machine.request(.checkPresent(key)))
    }

    public func remove(_ key: AnnexKey) throws -> Bool {
        try bool(machine.request(.remove(key)))
    }

    public func removeBefore(_ timestamp: Int64, _ key: AnnexKey) throws -> Bool {
        try bool(machine.request(.removeBefore(timestamp: timestamp, key: key)))
    }

    public func getTimestamp() throws -> Int64 {
        guard case .timestamp(let t) = try run(machine.request(.getTimestamp)) else {
            throw ClientError.unexpected("no TIMESTAMP", expecting: "TIMESTAMP")
        }
        return t
    }

    /// NOTIFYCHANGE: the first call answers at once (what the server has), each later one blocks
    /// until the server's refs change (`interrupt()` ends the wait from another thread).
    public func waitForChange() throws -> [String] {
        guard case .changed(let refs) = try run(machine.request(.notifyChange)) else {
            throw ClientError.unexpected("no CHANGED", expecting: "CHANGED")
        }
        return refs
    }

    /// Locks the content on the server while `body` runs (LOCKCONTENT … UNLOCKCONTENT).
    /// Returns nil, without running body, when the server could not lock it.
    public func withContentLocked<T>(_ key: AnnexKey, _ body: () throws -> T) throws -> T? {
        guard try bool(machine.request(.lockContent(key))) else { return nil }
        let result: T
        do { result = try body() } catch {
            _ = try? run(machine.request(.unlockContent))
            throw error
        }
        _ = try run(machine.request(.unlockContent))
        return result
    }

    public func lockContent(_ key: AnnexKey) throws -> Bool {
        try bool(machine.request(.lockContent(key)))
    }

    public func unlockContent() throws {
        _ = try run(machine.request(.unlockContent))
    }

    /// Downloads `key` into the local store, resuming a kept partial. True when
    /// the content arrived, verified, and is in place.
    public func get(_ key: AnnexKey, file: String = "") throws -> Bool {
        guard let store else { preconditionFailure("get needs a local store") }
        if store.isPresent(key) { return true }
        if let refusal = store.checkStorable(key) { throw refusal }
        var offset = store.partialSize(key)
        if let size = key.size, offset > size { store.discardPartial(key); offset = 0 }
        peerLacksContent = false
        lastStoreError = nil
        return try bool(machine.request(.get(key, offset: offset, file: Self.wireFile(file))))
    }

    public enum PutResult: Equatable { case stored, alreadyHad, failed }

    /// Uploads `key` from the local store.
    public func put(_ key: AnnexKey, file: String = "") throws -> PutResult {
        switch try run(machine.request(.put(key, file: Self.wireFile(file)))) {
        case .alreadyHave: return .alreadyHad
        case .success(let ok): return ok ? .stored : .failed
        default: return .failed
        }
    }

    /// Ends the session (closing the connection; a child server exits).
    public func close() {
        try? conn.flush()
        // Close both directions: a server blocked writing DATA we stopped reading
        // only notices through EPIPE.
        if let child {
            child.closeStdin()
            child.closeStdout()
            child.wait()
        }
        if ownsFD && !fdClosed {
            fdClosed = true
            Glibc.close(conn.readFD)
        }
        machine.closed()
    }

    /// AssociatedFile as git-annex writes it: whitespace as `%`, `%` as `%%`.
    static func wireFile(_ file: String) -> String {
        var out = ""
        for ch in file {
            if ch == "%" { out += "%%" } else if ch.isWhitespace { out += "%" } else { out.append(ch) }
        }
        return out
    }

    // MARK: Driving the machine

    private func bool(_ actions: [P2PClientMachine.Action]) throws -> Bool {
        guard case .success(let ok) = try run(actions) else {
            throw ClientError.unexpected("a different reply", expecting: "SUCCESS or FAILURE")
        }
        return ok
    }

    /// Performs actions and reads replies until the request finishes.
    private func run(_ initial: [P2PClientMachine.Action]) throws -> P2PClientMachine.Outcome {
        var queue = initial[...]
        while true {
            while let action = queue.popFirst() {
                switch action {
                case .send(let m):
                    conn.send(m)
                case .finished(let outcome):
                    try conn.flush()
                    return outcome
                case .failed(let error):
                    try? conn.flush()
                    throw error
                case .receiveData(let key, let offset, let length):
                    queue.append(contentsOf: machine.complete(.dataReceived(complete: try receive(key, offset: offset, length: length))))
                case .verify(let key, let valid):
                    queue.append(contentsOf: machine.complete(.verified(verify(key, valid: valid))))
                case .sendData(let key, let offset):
                    queue.append(contentsOf: machine.complete(.dataSent(valid: try send(key, offset: offset))))
                case .relayToService:
                    // Only a CONNECT relays, and connectService drives that itself.
                    throw ClientError.unexpected("DATA", expecting: "no git relay outside CONNECT")
                }
            }
            guard let line = try conn.readLine() else {
                machine.closed()
                throw ClientError.closed
            }
            do {
                queue.append(contentsOf: machine.receive(try P2PMessage.parse(line)))
            } catch {
                queue.append(contentsOf: machine.receive(.error("unparseable reply: \(KeyError.printable(line))")))
            }
        }
    }

    private func receive(_ key: AnnexKey, offset: Int64, length: Int64) throws -> Bool {
        guard let store else { return false }
        // A server sends DATA from the offset asked for; a protocol v0 peer may not
        // resume, so anything else is taken as a fresh start.
        let target = try store.beginReceive(key, offset: offset, mustVerify: machine.version == 0)
        incoming = target
        lastDataLength = length
        onStage?(.data(offset: offset))
        let got = try target.receive(from: conn, count: length, limit: receiveLimit)
        if let limit = receiveLimit, got >= limit {
            // Fault injection: the connection "broke" here; the partial stays.
            target.closeFile()
            incoming = nil
            throw ClientError.closed
        }
        if got < length {
            target.closeFile()
            incoming = nil
            return false
        }
        return true
    }

    private func verify(_ key: AnnexKey, valid: Bool?) -> Bool {
        guard let store, let target = incoming, target.key == key else { return false }
        incoming = nil
        onStage?(.verifying)
        if valid == false {
            if lastDataLength == 0 {
                // DATA 0 then INVALID: the peer does not have the content. What was kept stays.
                target.closeFile()
                peerLacksContent = true
                return false
            }
            // INVALID: the sender's file changed while it was sent.
            store.discard(target)
            return false
        }
        do {
            try store.commit(target)
            return true
        } catch {
            lastStoreError = error
            return false
        }
    }

    private func send(_ key: AnnexKey, offset: Int64) throws -> Bool {
        guard let store else { conn.send(.data(length: 0)); return false }
        onStage?(.data(offset: offset))
        switch try store.send(key, from: offset, over: conn) {
        case .absent:
            // Nothing to send: an empty DATA marked INVALID makes the server fail the PUT.
            conn.send(.data(length: 0))
            return false
        case .sent(let unchanged): return unchanged
        case .short: throw ClientError.closed
        }
    }
}
