#if canImport(Glibc)
import Glibc
#endif
import Shared

/// The I/O shell around `P2PServerMachine`: reads lines and DATA from the
/// connection, performs the machine's actions against the object store, and
/// writes the replies the machine returns (and nothing else: payload bytes of a
/// DATA the machine announced, and a CONNECT relay's frames, are the only other
/// bytes it writes). One session per connection; blocking I/O on its own thread.
public final class P2PServerSession {
    /// Decides an AUTH: what the token grants, or nil.
    public typealias Authenticator = (_ clientUUID: String, _ token: String) -> PeerGrant?

    let conn: FDConnection
    let store: ObjectStore
    var machine: P2PServerMachine
    let authenticate: Authenticator
    /// Diagnostics for the operator (stderr for p2p-stdio, which ssh shows to the client's user).
    let report: (String) -> Void
    let events: P2PServerEvents?

    private var incoming: IncomingContent?
    /// Content opened for a GET, between `.openContent` and `.streamContent`.
    private var outgoing: OutgoingContent?
    private var contentLock: ContentLock?
    private var lockRetention: Retention?
    private var refWatcher: RefWatcher?

    public init(connection: FDConnection, store: ObjectStore, config: P2PServerMachine.Config,
                clientUUID: String? = nil, events: P2PServerEvents? = nil,
                authenticateAccess: @escaping Authenticator = { _, _ in nil },
                report: @escaping (String) -> Void) {
        self.conn = connection
        self.store = store
        self.machine = P2PServerMachine(config: config, clientUUID: clientUUID)
        self.authenticate = authenticateAccess
        self.report = report
        self.events = events
    }

    /// Serves until the client disconnects or the protocol ends the session.
    public func run() throws {
        defer { finish() }
        try perform(machine.start())
        while !machine.isClosed {
            let line: String?
            do {
                line = try conn.readLine()
            } catch let e as FDConnection.ReadError {
                try perform(machine.receiveUnreadable(e.description))
                return
            }
            guard let line else { return }
            let actions: [P2PServerMachine.Action]
            do {
                actions = machine.receive(try P2PMessage.parse(line))
            } catch {
                actions = machine.receiveUnparseable(error)
            }
            try perform(actions)
        }
    }

    private func perform(_ actions: [P2PServerMachine.Action]) throws {
        var queue = actions[...]
        while let action = queue.popFirst() {
            switch action {
            case .send(let m):
                conn.send(m)
            case .close(let reason):
                try conn.flush()
                report("session closed: \(reason)")
            case .effect(let e):
                perform(e)
            case .local(let request):
                let result = try handle(request)
                queue.append(contentsOf: machine.complete(result))
            }
        }
        try conn.flush()
    }

    private func perform(_ effect: P2PServerMachine.Effect) {
        switch effect {
        case .unlockContent:
            lockRetention?.end()
            lockRetention = nil
            contentLock?.release()
            contentLock = nil
        case .discardReceived(let key):
            if let i = incoming { store.discard(i) } else { store.discardPartial(key) }
            incoming = nil
        case .discardPartial(let key):
            store.discardPartial(key)
        }
    }

    private func handle(_ request: P2PServerMachine.LocalRequest) throws -> P2PServerMachine.LocalResult {
        switch request {
        case .checkAuth(let uuid, let token):
            let grant = authenticate(uuid, token)
            events?.authenticated(clientUUID: uuid, peer: grant?.peer, ok: grant != nil)
            switch grant?.access {
            case .readWrite: return .authenticated(true)
            case .readOnly: return .authenticatedReadOnly
            case nil: return .authenticated(false)
            }

        case .checkPresent(let key):
            return .present(store.isPresent(key))

        case .lockContent(let key):
            guard let (lock, path) = try store.lockPresent(key) else { return .locked(false) }
            // Held for 10 minutes past a dropped connection, as git-annex does.
            lockRetention = Retention.retain(path, seconds: 600)
            contentLock = lock
            return .locked(true)

        case .remove(let key, let before):
            do {
                // Absent content counts as removed, as in git-annex.
                guard store.isPresent(key) else { return .done(true) }
                let removed = try store.remove(key) { before.map { Clock.monotonicSeconds() < $0 } ?? true }
                if removed { events?.removed(key) }
                return .done(removed)
            } catch {
                report("cannot remove \(key): \(error)")
                return .done(false)
            }

        case .getTimestamp:
            return .timestamp(Clock.monotonicSeconds())

        case .preparePut(let key):
            if let refusal = store.checkStorable(key) {
                report(refusal.description)
                return .refused(refusal.description)
            }
            let present = store.isPresent(key)
            return .putCandidate(present: present, partialSize: present ? 0 : store.partialSize(key))

        case .receiveData(let key, let offset, let length):
            let target = try store.beginReceive(key, offset: offset, mustVerify: machine.version == 0)
            incoming = target
            let got = try target.receive(from: conn, count: length)
            if got < length {
                target.closeFile()
                incoming = nil
                report("\(key): connection closed after \(got) of \(length) bytes; \(target.size) bytes kept to resume")
                return .received(complete: false)
            }
            return .received(complete: true)

        case .storeReceived(let key, let valid):
            guard let target = incoming, target.key == key else { return .stored(false) }
            incoming = nil
            guard valid else {
                store.discard(target)
                report("\(key): the sender said the content changed while it was sent (INVALID); discarded")
                return .stored(false)
            }
            do {
                try store.commit(target)
                events?.received(key)
                return .stored(true)
            } catch {
                report("\(error)")
                return .stored(false)
            }

        case .openContent(let key, _):
            guard let content = try store.openForSending(key) else { return .contentAbsent }
            outgoing = content
            return .contentOpened(size: content.size)

        case .streamContent(let key, let offset, let length):
            guard let content = outgoing, content.key == key else {
                preconditionFailure("streamContent of \(key) without openContent")
            }
            defer { content.close(); outgoing = nil }
            let (complete, unchanged) = try content.stream(from: offset, length: length, over: conn)
            if complete { events?.sent(key) }
            return .contentStreamed(complete: complete, unchanged: unchanged)

        case .waitForChange:
            if refWatcher == nil { refWatcher = RefWatcher(repo: store.repo) }
            return .changed(try refWatcher!.waitForChange(hangup: conn.readFD))

        case .connect(let service):
            let code = try GitService.relay(service: service, repo: store.repo, connection: conn, report: report)
            return .serviceFinished(exitCode: Int(code))
        }
    }

    /// The connection ended: release locks; a partial stays for resume.
    private func finish() {
        contentLock?.release()
        contentLock = nil
        outgoing?.close()
        outgoing = nil
        incoming?.closeFile()
        incoming = nil
        try? conn.flush()
    }
}

/// What a session tells the daemon (events on the RPC bus); p2p-stdio passes nil.
public protocol P2PServerEvents: AnyObject {
    /// `peer`: the name of the peer whose token was accepted, when annexd made it.
    func authenticated(clientUUID: String, peer: String?, ok: Bool)
    func received(_ key: AnnexKey)
    func sent(_ key: AnnexKey)
    func removed(_ key: AnnexKey)
}

public enum Clock {
    /// Whole seconds since boot, the clock git-annex uses for GETTIMESTAMP / REMOVE-BEFORE
    /// (CLOCK_BOOTTIME: it keeps counting through suspend).
    public static func monotonicSeconds() -> Int64 {
        var ts = timespec()
        if clock_gettime(CLOCK_BOOTTIME, &ts) != 0 { clock_gettime(CLOCK_MONOTONIC, &ts) }
        return Int64(ts.tv_sec)
    }
}
