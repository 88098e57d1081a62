import Foundation
import Shared
import Synchronization

/// `git annex p2p --pair` in the daemon. A session sends this repository's pairing data
/// (half token, addresses) as a wormhole file under our code, and receives the other side's
/// under their code, both at once with git-annex's appid. Then, as git-annex does: the token
/// the other side presents to us (our half ‖ their half) goes into creds/p2pauth, and we link
/// to their address with the token we present (their half ‖ our half), retrying every 2 s
/// because the other side races to store its token.
///
/// Nothing is stored before both transfers succeeded; a failure after that (no link, cancel)
/// removes the stored token again.
final class PairingSessions: Sendable {
    private let sessions = Mutex<[String: PairingSession]>([:])

    func add(_ s: PairingSession) { sessions.withLock { $0[s.id] = s } }
    func get(_ id: String) -> PairingSession? { sessions.withLock { $0[id] } }
    func remove(_ id: String) { _ = sessions.withLock { $0.removeValue(forKey: id) } }
    var active: [PairingSession] { sessions.withLock { Array($0.values) } }
}

/// A value delivered once, awaited by any number of tasks.
final class OneShot<T: Sendable>: Sendable {
    private let state = Mutex<(result: Result<T, Error>?, waiters: [CheckedContinuation<T, Error>])>((nil, []))

    @discardableResult
    func fulfill(_ result: Result<T, Error>) -> Bool {
        let waiters = state.withLock { s -> [CheckedContinuation<T, Error>]? in
            guard s.result == nil else { return nil }
            s.result = result
            defer { s.waiters = [] }
            return s.waiters
        }
        guard let waiters else { return false }
        for w in waiters { w.resume(with: result) }
        return true
    }

    var isFulfilled: Bool { state.withLock { $0.result != nil } }

    /// Waits for the value; a cancelled waiter ends the one-shot with CancellationError.
    func value() async throws -> T {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, Error>) in
                let ready = state.withLock { s -> Result<T, Error>? in
                    if s.result == nil { s.waiters.append(c) }
                    return s.result
                }
                if let ready { c.resume(with: ready) }
            }
        } onCancel: {
            fulfill(.failure(CancellationError()))
        }
    }
}

final class PairingSession: Sendable {
    let id = Hex.encode(Sodium.randomBytes(8))
    let repo: Registry.Repo
    let name: String
    let ourHalf = PairData.newHalfToken()
    let timeout: Duration
    let ourCode = OneShot<WormholeCode>()
    let theirCode = OneShot<WormholeCode>()
    let outcome = OneShot<RemoteInfo>()
    private let progress = Mutex<Progress>(Progress())
    private let task = Mutex<Task<Void, Never>?>(nil)

    struct Progress {
        var submitted = false
        var sent = false
        var received = false
        var cancelled = false
    }

    init(repo: Registry.Repo, name: String, timeout: Duration) {
        self.repo = repo
        self.name = name
        self.timeout = timeout
    }

    func update(_ change: (inout Progress) -> Void) { progress.withLock { change(&$0) } }
    var state: Progress { progress.withLock { $0 } }

    func run(_ body: @escaping @Sendable () async -> Void) { task.withLock { $0 = Task { await body() } } }
    func cancel() {
        update { $0.cancelled = true }
        theirCode.fulfill(.failure(CancellationError()))
        task.withLock { $0?.cancel() }
    }
}

extension Daemon {
    static let defaultPairingTimeout = 600

    func registerPairing(_ d: inout RPCDispatcher<RPCCaller>) {
        d.register(PairStart.self) { [self] params, _ in try await startPairing(params) }
        d.register(PairSubmit.self) { [self] params, _ in try await submitPairing(params) }
        d.register(PairCancel.self) { [self] params, _ in
            let session = try pairingSession(params.id)
            guard !session.outcome.isFulfilled else {
                throw RPCError(.invalidState, message: "pairing \(params.id) has already finished", reason: "pairing_finished")
            }
            session.cancel()
            return RPCEmptyResult()
        }
    }

    private func pairingSession(_ id: String) throws -> PairingSession {
        guard let s = pairings.get(id) else {
            throw RPCError(.notFound, message: "no pairing \(id): it finished, was cancelled, or never existed; start again with pair.start",
                           reason: "pairing_not_found")
        }
        return s
    }

    // MARK: pair.start

    func startPairing(_ params: PairStart.Params) async throws -> PairStart.Result {
        let repo = try lookup(params.repo)
        let name = try params.name ?? unusedPeerName(repo)
        try checkPairingName(name, in: repo)
        let key = try registry.onionKey(for: repo.uuid)
        let payload = PairData(halfToken: "", addresses: ["tor-annex::\(key.onionAddress):\(repo.port)"])
        let session = PairingSession(repo: repo, name: name, timeout: .seconds(params.timeout ?? Self.defaultPairingTimeout))
        pairings.add(session)
        session.run { [self] in await runPairing(session, addresses: payload.addresses) }
        do {
            let code = try await session.ourCode.value()
            return PairStart.Result(id: session.id, code: code.text, name: name)
        } catch {
            throw pairingError(error, session)
        }
    }

    /// git-annex's `unusedPeerRemoteName`: peer1, peer2, … not yet a remote (nor a peer here).
    private func unusedPeerName(_ repo: Registry.Repo) throws -> String {
        let remotes = Set(((try? Command.output(["git", "remote"], cwd: repo.path)) ?? "").split(separator: "\n").map(String.init))
        let peers = Set(repo.peers.map(\.name))
        return (1...).lazy.map { "peer\($0)" }.first { !remotes.contains($0) && !peers.contains($0) }!
    }

    private func checkPairingName(_ name: String, in repo: Registry.Repo) throws {
        guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw RPCError.invalidParams(reason: "invalid_remote_name", "params.name: use letters, digits, '-', '_' or '.', at most 64")
        }
        if let url = try? Command.output(["git", "config", "--get", "remote.\(name).url"], cwd: repo.path), !url.isEmpty {
            throw RPCError(.alreadyExists, message: "\(repo.path) already has a remote named \(name); choose another name",
                           reason: "remote_exists")
        }
        if repo.peers.contains(where: { $0.name == name }) {
            throw RPCError(.alreadyExists, message: "\(repo.path) already has a peer named \(name); choose another name", reason: "peer_exists")
        }
        if pairings.active.contains(where: { $0.repo.uuid == repo.uuid && $0.name == name && !$0.outcome.isFulfilled }) {
            throw RPCError(.busy, message: "a pairing for \(name) in \(repo.path) is already under way", reason: "pairing_in_progress")
        }
    }

    // MARK: pair.submit

    func submitPairing(_ params: PairSubmit.Params) async throws -> PairSubmit.Result {
        let session = try pairingSession(params.id)
        let code: WormholeCode
        do { code = try WormholeCode(userInput: params.code) } catch {
            throw RPCError.invalidParams(reason: "invalid_code", "params.code: \(error); a pairing code looks like 7-guitarist-revenge")
        }
        if let ours = try? await session.ourCode.value(), ours == code {
            throw RPCError.invalidParams(reason: "own_code", "that is this repository's own pairing code; enter the code the *other* repository shows")
        }
        if session.outcome.isFulfilled {
            do { return PairSubmit.Result(id: session.id, remote: try await session.outcome.value()) } catch {
                throw pairingError(error, session)
            }
        }
        var already = false
        session.update { p in already = p.submitted; p.submitted = true }
        if already {
            throw RPCError(.invalidState, message: "the other side's code was already given for pairing \(session.id)", reason: "code_already_given")
        }
        session.theirCode.fulfill(.success(code))
        do {
            return PairSubmit.Result(id: session.id, remote: try await session.outcome.value())
        } catch {
            throw pairingError(error, session)
        }
    }

    // MARK: The session

    private func pairingConfiguration() async -> Wormhole.Configuration {
        var c = config.wormhole
        c.appID = Wormhole.gitAnnexAppID
        if c.socks == nil, let tor, let s = await tor.socksAddress {
            c.socks = SOCKSProxy(host: s.host, port: s.port)
        }
        return c
    }

    private func progress(_ session: PairingSession, _ stage: String, _ message: String) {
        publish("pair.progress", ["pairing": .string(session.id), "repo": .string(session.repo.path), "stage": .string(stage),
                                  "message": .string(message)])
    }

    private enum Exchanged: Sendable {
        case sent
        case received([UInt8])
    }

    private struct PairTimeout: Error {}

    private func runPairing(_ session: PairingSession, addresses: [String]) async {
        let wormhole = await pairingConfiguration()
        let ours = PairData(halfToken: session.ourHalf, addresses: addresses)
        do {
            let theirBytes = try await withThrowingTaskGroup(of: Exchanged.self) { group in
                group.addTask { [self] in
                    try await Wormhole.sendFile(ours.serialized, filename: "send", configuration: wormhole) { [self] code in
                        session.ourCode.fulfill(.success(code))
                        publish("pair.code", ["pairing": .string(session.id), "repo": .string(session.repo.path), "name": .string(session.name),
                                              "code": .string(code.text)])
                    }
                    session.update { $0.sent = true }
                    return .sent
                }
                group.addTask { [self] in
                    let code = try await session.theirCode.value()
                    progress(session, "exchanging", "exchanging pairing data")
                    let file = try await Wormhole.receiveFile(code: code, configuration: wormhole, maxSize: 64 << 10)
                    session.update { $0.received = true }
                    return .received(file.bytes)
                }
                group.addTask {
                    try await Task.sleep(for: session.timeout)
                    throw PairTimeout()
                }
                var sent = false
                var received: [UInt8]?
                while !sent || received == nil {
                    switch try await group.next() {
                    case .sent?: sent = true
                    case .received(let b)?: received = b
                    case nil: throw PairTimeout()
                    }
                }
                group.cancelAll()
                return received!
            }
            let theirs: PairData
            do { theirs = try PairData(parsing: theirBytes) } catch {
                throw RPCError(.unavailable, message: "\(error); nothing was stored", reason: "bad_pair_data")
            }
            progress(session, "exchanged", "successfully exchanged pairing data; connecting to \(session.name)")
            let remote = try await finishPairing(session, theirs)
            session.outcome.fulfill(.success(remote))
            publish("pair.succeeded", ["pairing": .string(session.id), "repo": .string(session.repo.path), "remote": .string(remote.name),
                                       "uuid": remote.uuid.map { .string($0) } ?? .null, "address": .string(remote.address)])
        } catch {
            let rpc = pairingError(error, session)
            session.ourCode.fulfill(.failure(rpc))
            session.outcome.fulfill(.failure(rpc))
            publish("pair.failed", ["pairing": .string(session.id), "repo": .string(session.repo.path), "reason": .string(rpc.reason ?? "error"),
                                    "error": .string(rpc.message)])
        }
        // Kept a while so a late pair.submit or pair.cancel hears how it ended.
        let id = session.id
        Task { [weak self] in
            try? await Task.sleep(for: .seconds(300))
            self?.pairings.remove(id)
        }
    }

    /// Stores the token the other side presents, then links to it (retrying); on failure
    /// the stored token is removed again.
    private func finishPairing(_ session: PairingSession, _ theirs: PairData) async throws -> RemoteInfo {
        guard let accepted = AuthToken(session.ourHalf + theirs.halfToken),
              let presented = AuthToken(theirs.halfToken + session.ourHalf) else {
            throw RPCError(.unavailable, message: "the other side's half token is not usable; nothing was stored", reason: "bad_pair_data")
        }
        let repo = session.repo
        try editAuthFile(repo) { $0.add(accepted, address: nil) }
        let peer = Registry.Peer(name: session.name, tokenSHA256: Registry.hash(accepted), access: .readWrite,
                                 created: Date().timeIntervalSince1970)
        try registry.addPeer(peer, to: repo.uuid)
        do {
            return try await linkPaired(session, theirs.addresses, token: presented)
        } catch {
            try? editAuthFile(repo) { _ = $0.remove(accepted) }
            try? registry.updatePeer(named: session.name, in: repo.uuid) { $0 = nil }
            throw error
        }
    }

    /// git-annex's `finishPairing`: every address in turn, then again, until one links. The
    /// first tries usually race the other side storing its token, so they come quicker than
    /// git-annex's fixed 2 s (a failed AUTH costs 50 ms at the listener).
    private func linkPaired(_ session: PairingSession, _ addresses: [String], token: AuthToken) async throws -> RemoteInfo {
        var attempt = 0
        var lastError: RPCError?
        let deadline = ContinuousClock.now + session.timeout
        while ContinuousClock.now < deadline {
            attempt += 1
            for address in addresses {
                try Task.checkCancellation()
                do {
                    return try await link(PeerLink.Params(repo: session.repo.path, name: session.name, address: "\(address):\(token.value)"))
                } catch let e as RPCError where ["auth_failed", "peer_unreachable", "protocol_error", "connect_failed", "peer_timeout"].contains(e.reason ?? "") {
                    lastError = e
                }
            }
            let delay = [0.1, 0.25, 0.5, 1.0].dropFirst(attempt - 1).first ?? 2.0
            progress(session, "retrying", "unable to connect to \(session.name) (\(lastError?.message ?? "?")); retrying")
            try await Task.sleep(for: .seconds(delay))
        }
        throw RPCError(.unavailable, message: "paired, but could not link to \(session.name) within \(session.timeout.components.seconds) s: "
                       + "\(lastError?.message ?? "no attempt"); the token was removed again, pair once more", reason: "link_failed")
    }

    /// One clear error for everything a pairing can run into.
    func pairingError(_ error: Error, _ session: PairingSession) -> RPCError {
        let state = session.state
        let spent = "Nothing was stored and the code is spent: start pairing again on both sides."
        if let e = error as? RPCError { return e }
        if state.cancelled || error is CancellationError {
            return RPCError(.invalidState, message: "pairing \(session.id) was cancelled; nothing was stored", reason: "cancelled")
        }
        if error is PairTimeout {
            let seconds = session.timeout.components.seconds
            let message: String
            if !state.submitted {
                message = "nobody entered the other repository's code within \(seconds) s"
            } else if !state.sent || !state.received {
                message = "the other side never came: it did not complete the exchange within \(seconds) s (did it enter our code?)"
            } else {
                message = "pairing did not finish within \(seconds) s"
            }
            return RPCError(.unavailable, message: message + ". Nothing was stored; start pairing again.", reason: "timeout")
        }
        guard let w = error as? WormholeClientError else {
            return RPCError(.unavailable, message: "pairing failed: \(error). Nothing was stored.", reason: "pairing_failed")
        }
        switch w {
        case .wormhole(.wrongCode):
            return RPCError(.permissionDenied, message: "key confirmation failed: the other side used a different code "
                            + "(a typo, or someone guessing). \(spent)", reason: "wrong_code")
        case .wormhole(.crowded):
            return RPCError(.unavailable, message: "the code's nameplate is crowded: a third client is using the same code. \(spent)",
                            reason: "crowded")
        case .connectFailed, .upgradeRefused, .unsupportedURL, .tlsFailed:
            return RPCError(.unavailable, message: "\(w.description) (set with --wormhole-relay-url or WORMHOLE_RELAY_URL). Nothing was stored.",
                            reason: "mailbox_unreachable")
        case .wormhole(.connectionLost):
            return RPCError(.unavailable, message: "the connection to the wormhole mailbox server was lost. \(spent)", reason: "mailbox_lost")
        case .wormhole(.transit(let why)):
            return RPCError(.unavailable, message: "the pairing data could not be transferred: \(why). \(spent)", reason: "transfer_failed")
        case .wormhole(.unwelcome), .wormhole(.serverError):
            return RPCError(.unavailable, message: "\(w.description). Nothing was stored.", reason: "mailbox_error")
        case .timedOut:
            return RPCError(.unavailable, message: "\(w.description). Nothing was stored.", reason: "timeout")
        case .wormhole(let other):
            return RPCError(.unavailable, message: "pairing failed: \(other.description). \(spent)", reason: "pairing_failed")
        }
    }
}
