import Testing
import TranscriptSupport
@testable import Shared

// In-memory shells for annexd's pure P2P machines, joined by byte pipes for peer-vs-peer tests.


/// A repository's annex objects in memory.
final class MemoryStore {
    var objects: [AnnexKey: [UInt8]] = [:]
    /// Partial uploads kept for resume (the server's `.git/annex/tmp`).
    var partials: [AnnexKey: [UInt8]] = [:]
    var locks: Set<AnnexKey> = []
    /// The server's clock (seconds) for REMOVE-BEFORE, and GETTIMESTAMP's answer when
    /// `timestampAnswers` is nil.
    var clock: Int64 = 1000
    /// Recorded answers to GETTIMESTAMP, used in order.
    var timestampAnswers: [Int64]?

    init(files: [String]) {
        for f in files { objects[Content.key(f)] = Content.bytes(f) }
    }
}

/// Performs P2PServerMachine's actions in memory, as annexd's P2PServerSession does with a
/// connection and an ObjectStore: it answers local requests from a `MemoryStore` and writes
/// exactly what the machine returns, plus the payload bytes of a DATA the machine announced.
/// No protocol rules of its own. Lines come from a LineBuffer, DATA is taken from it when
/// asked; every byte written is in `sent` (and in `outbox` until a peer takes it).
final class ServerShell {
    var machine: P2PServerMachine
    let store: MemoryStore
    var input = LineBuffer()
    /// The client closed its side: no more bytes after what is buffered.
    var inputEnded = false
    private(set) var sent: [UInt8] = []
    var outbox: [UInt8] = []
    var closeReason: String?
    /// The client's stream ended and the session ended with it.
    var ended = false
    /// A local request this shell does not implement (NOTIFYCHANGE, CONNECT): it stops there.
    var stoppedAt: P2PServerMachine.LocalRequest?
    var problems: [String] = []
    /// Send only this many bytes of the next DATA payload (content shrank / connection broke).
    var shortSend: Int?
    /// Content opened for a GET, between `.openContent` and `.streamContent`.
    private var opened: [UInt8]?
    private var heldLocks: Set<AnnexKey> = []

    var closed: Bool { machine.isClosed }
    var isDone: Bool { closed || ended || stoppedAt != nil }
    /// What the server wrote, as lines and payloads.
    var output: [Wire] { Wire.items(ofStream: sent) }

    init(config: P2PServerMachine.Config, store: MemoryStore) {
        machine = P2PServerMachine(config: config)
        self.store = store
    }

    func start() { perform(machine.start()) }

    /// Answers the local request it stopped at (NOTIFYCHANGE's wait: `.changed(refs)`).
    func answer(_ result: P2PServerMachine.LocalResult) {
        stoppedAt = nil
        perform(machine.complete(result))
    }

    /// Handles every complete line buffered (and the DATA they announce).
    func pump() {
        while !isDone {
            let line: String?
            do {
                line = try input.nextLine()
            } catch {
                perform(machine.receiveUnreadable(error.description))
                return
            }
            guard let line else {
                if inputEnded { ended = true; finish() }
                return
            }
            let actions: [P2PServerMachine.Action]
            do {
                actions = machine.receive(try P2PMessage.parse(line))
            } catch {
                actions = machine.receiveUnparseable(error)
            }
            perform(actions)
        }
    }

    private func write<S: Sequence<UInt8>>(_ bytes: S) {
        sent += bytes
        outbox += bytes
    }

    private func perform(_ actions: [P2PServerMachine.Action]) {
        var queue = actions[...]
        while let action = queue.popFirst() {
            switch action {
            case .send(let m): write(Array(m.wireLine.utf8) + [10])
            case .close(let reason): closeReason = reason; finish()
            case .effect(.unlockContent(let key)): unlock(key)
            case .effect(.discardReceived(let key)), .effect(.discardPartial(let key)): store.partials[key] = nil
            case .local(let request):
                switch request {
                case .waitForChange, .connect:
                    stoppedAt = request
                    return
                default:
                    queue.append(contentsOf: machine.complete(handle(request)))
                }
            }
        }
    }

    private func handle(_ request: P2PServerMachine.LocalRequest) -> P2PServerMachine.LocalResult {
        switch request {
        case .checkAuth:
            problems.append("AUTH on a preauthenticated session")
            return .authenticated(false)
        case .checkPresent(let key):
            return .present(store.objects[key] != nil)
        case .lockContent(let key):
            guard store.objects[key] != nil else { return .locked(false) }
            store.locks.insert(key)
            heldLocks.insert(key)
            return .locked(true)
        case .remove(let key, let before):
            // Absent content counts as removed, as in git-annex.
            guard store.objects[key] != nil else { return .done(true) }
            if let before, !(store.clock < before) { return .done(false) }
            if store.locks.contains(key) { return .done(false) }
            store.objects[key] = nil
            return .done(true)
        case .getTimestamp:
            guard var answers = store.timestampAnswers else { return .timestamp(store.clock) }
            guard !answers.isEmpty else {
                problems.append("GETTIMESTAMP asked more often than recorded")
                return .timestamp(store.clock)
            }
            let t = answers.removeFirst()
            store.timestampAnswers = answers
            return .timestamp(t)
        case .preparePut(let key):
            let present = store.objects[key] != nil
            return .putCandidate(present: present, partialSize: present ? 0 : Int64(store.partials[key]?.count ?? 0))
        case .receiveData(let key, let offset, let length):
            var partial = store.partials[key] ?? []
            guard Int64(partial.count) >= offset else {
                problems.append("receive \(key) at \(offset), partial has \(partial.count) bytes")
                return .received(complete: false)
            }
            partial.removeSubrange(Int(offset)...)
            let n = Int(min(length, Int64(input.bufferedCount)))
            input.takeBytes(max: n) { partial += $0 }
            store.partials[key] = partial
            if Int64(n) < length && !inputEnded { problems.append("DATA \(length) payload not all available (harness)") }
            return .received(complete: Int64(n) == length)
        case .storeReceived(let key, let valid):
            guard let partial = store.partials.removeValue(forKey: key) else { return .stored(false) }
            // annexd verifies (annex.verify) and discards on a mismatch or INVALID.
            guard valid, Content.verify(key, partial) else { return .stored(false) }
            store.objects[key] = partial
            return .stored(true)
        case .openContent(let key, _):
            guard let content = store.objects[key] else { return .contentAbsent }
            opened = content
            return .contentOpened(size: Int64(content.count))
        case .streamContent(_, let offset, let length):
            guard let content = opened else {
                problems.append("streamContent without openContent")
                return .contentStreamed(complete: false, unchanged: true)
            }
            opened = nil
            let body = content[Int(offset)..<Int(offset + length)]
            if let short = shortSend, short < body.count {
                shortSend = nil
                write(body.prefix(short))
                return .contentStreamed(complete: false, unchanged: true)
            }
            write(body)
            return .contentStreamed(complete: true, unchanged: true)
        case .waitForChange, .connect:
            preconditionFailure("handled in perform")
        }
    }

    private func unlock(_ key: AnnexKey) {
        heldLocks.remove(key)
        store.locks.remove(key)
    }

    /// The session ended: its locks go; partials stay for resume.
    private func finish() {
        for k in heldLocks { store.locks.remove(k) }
        heldLocks.removeAll()
    }
}

/// Does for P2PClientMachine what annexd's P2PClient does, in memory.
final class ClientShell {
    var machine: P2PClientMachine
    var input = LineBuffer()
    var inputEnded = false
    var output: [Wire] = []
    var outbox: [UInt8] = []
    /// Content the client has (to PUT, and what it got).
    var objects: [AnnexKey: [UInt8]] = [:]
    /// Partial downloads kept for resume.
    var partials: [AnnexKey: [UInt8]] = [:]
    var results: [ClientResult] = []
    var problems: [String] = []
    /// `output.count` when the shell found the connection gone; later output goes nowhere.
    var outputCountAtBreak: Int?
    /// Send only this many bytes of the next DATA payload, then the connection breaks.
    var shortSend: Int?
    /// Say INVALID after the next DATA (the file changed while it was sent).
    var sendInvalid = false
    /// CONNECT: what the server's git service sent, as the local git would read it.
    var relayed: [UInt8] = []
    private(set) var closed = false

    init(maxVersion: Int, objects files: [String] = []) {
        machine = P2PClientMachine(maxVersion: maxVersion)
        for f in files { objects[Content.key(f)] = Content.bytes(f) }
    }

    func start() { perform(machine.start(clientUUID: nil, token: nil)) }

    func request(_ r: P2PClientMachine.Request) { perform(machine.request(r)) }

    /// CONNECT: the local git wrote `bytes`; they go to the server in one DATA frame.
    func relayFromService(_ bytes: [UInt8]) {
        let actions = machine.relayFromService(count: bytes.count)
        perform(actions)
        if !actions.isEmpty {
            output.append(.payload(announced: Int64(bytes.count), bytes))
            outbox += bytes
        }
    }

    /// Reads server lines while the machine waits for one.
    func pump() {
        while !closed && !machine.isReady && machine.state != .closed {
            let line: String?
            do {
                line = try input.nextLine()
            } catch {
                problems.append("bad line from the server: \(error)")
                connectionEnded()
                return
            }
            guard let line else {
                if inputEnded { connectionEnded(); results.append(.connectionClosed) }
                return
            }
            guard let m = try? P2PMessage.parse(line) else {
                problems.append("unparsable line from the server: \(line)")
                connectionEnded()
                return
            }
            perform(machine.receive(m))
        }
    }

    /// The client closes its side (end of the command).
    func hangUp() { closed = true }

    private func connectionEnded() {
        if outputCountAtBreak == nil { outputCountAtBreak = output.count }
        machine.closed()
        closed = true
    }

    private func send(_ m: P2PMessage) {
        output.append(.line(m.wireLine))
        outbox += Array(m.wireLine.utf8) + [10]
    }

    private func perform(_ actions: [P2PClientMachine.Action]) {
        var queue = actions[...]
        while let action = queue.popFirst() {
            switch action {
            case .send(let m):
                send(m)
            case .finished(let o):
                results.append(.outcome(o))
            case .failed(let e):
                results.append(.failed(e))
                if machine.state == .closed { closed = true }
            case .receiveData(let key, let offset, let length):
                var partial = partials[key] ?? []
                if Int64(partial.count) < offset { problems.append("GET from \(offset) with a \(partial.count)-byte partial") }
                partial = Array(partial.prefix(Int(offset)))
                let n = Int(min(length, Int64(input.bufferedCount)))
                input.takeBytes(max: n) { partial += $0 }
                partials[key] = partial
                let complete = Int64(n) == length
                if !complete {
                    if !inputEnded { problems.append("DATA \(length) payload not all available (harness)") }
                    if outputCountAtBreak == nil { outputCountAtBreak = output.count }
                }
                queue.append(contentsOf: machine.complete(.dataReceived(complete: complete)))
            case .relayToService(let length):
                let n = Int(min(length, Int64(input.bufferedCount)))
                input.takeBytes(max: n) { self.relayed += $0 }
                if n < Int(length) { problems.append("DATA \(length) payload of the service not all available (harness)") }
            case .verify(let key, let valid):
                let got = partials.removeValue(forKey: key) ?? []
                let ok = valid != false && Content.verify(key, got)
                if ok { objects[key] = got }
                queue.append(contentsOf: machine.complete(.verified(ok)))
            case .sendData(let key, let offset):
                guard let content = objects[key] else {
                    problems.append("asked to send \(key), which the client does not have")
                    connectionEnded()
                    return
                }
                let body = content[Int(min(max(offset, 0), Int64(content.count)))...]
                send(.data(length: Int64(body.count)))
                if let short = shortSend, short < body.count {
                    shortSend = nil
                    output.append(.payload(announced: Int64(body.count), Array(body.prefix(short))))
                    outbox += body.prefix(short)
                    connectionEnded()
                    results.append(.connectionClosed)
                    return
                }
                output.append(.payload(announced: Int64(body.count), Array(body)))
                outbox += body
                let valid = !sendInvalid
                sendInvalid = false
                queue.append(contentsOf: machine.complete(.dataSent(valid: valid)))
            }
        }
    }
}

/// A client shell and a server shell joined by in-memory byte pipes.
final class PeerLink {
    let client: ClientShell
    let server: ServerShell

    init(clientMax: Int, serverMax: Int, store: MemoryStore, clientFiles: [String] = []) {
        client = ClientShell(maxVersion: clientMax, objects: clientFiles)
        server = ServerShell(config: .init(serverUUID: RecordedSetup.serverUUID, maxVersion: serverMax,
                                           preauthenticated: true), store: store)
    }

    func connect() -> ClientResult? {
        server.start()
        client.start()
        return settle(since: 0)
    }

    /// One request; its result (the first new one).
    func run(_ r: P2PClientMachine.Request) -> ClientResult? {
        let before = client.results.count
        client.request(r)
        return settle(since: before)
    }

    /// The server answers the request it stopped at; the client's result.
    func serverAnswers(_ result: P2PServerMachine.LocalResult) -> ClientResult? {
        let before = client.results.count
        server.answer(result)
        return settle(since: before)
    }

    func hangUp() {
        client.hangUp()
        _ = settle(since: client.results.count)
    }

    /// Moves bytes both ways until neither side has anything more to do.
    private func settle(since: Int) -> ClientResult? {
        for _ in 0..<10_000 {
            var moved = false
            if !client.outbox.isEmpty {
                server.input.append(client.outbox)
                client.outbox.removeAll()
                moved = true
            }
            if client.closed && !server.inputEnded { server.inputEnded = true; moved = true }
            server.pump()
            if !server.outbox.isEmpty {
                client.input.append(server.outbox)
                server.outbox.removeAll()
                moved = true
            }
            // A server waiting for a ref change (NOTIFYCHANGE) keeps the connection open.
            if server.isDone && server.stoppedAt != .waitForChange && !client.inputEnded { client.inputEnded = true; moved = true }
            client.pump()
            if !moved && client.outbox.isEmpty && server.outbox.isEmpty {
                return client.results.count > since ? client.results[since] : nil
            }
        }
        Issue.record("the link did not settle")
        return nil
    }
}

