import Foundation
import Shared

/// `git annex p2p --pair` in the daemon. A session sends this repository's pairing data
/// (half token, addresses) as a wormhole file under our code, and receives the other side's
/// under their code, both at once with git-annex's appid. Then, as git-annex does: the token
/// the other side presents to us (our half ‖ their half) goes into creds/p2pauth, and we link
/// to their address with the token we present (their half ‖ our half), retrying every 2 s
/// because the other side races to store its token.
///
/// Nothing is stored before both transfers succeeded; a failure after that (no link, cancel)
/// removes the stored token again.
public final class PairingService: Sendable {
    public enum PairingError: ServiceError {
        case notFound(id: String)
        case finished(id: String)
        case invalidCode(why: String)
        case ownCode
        case codeAlreadyGiven(id: String)
        case inProgress(name: String, repo: String)
        case remoteExists(name: String, repo: String)
        case cancelled(id: String)
        case timedOut(String)
        case badPairData(why: String)
        case linkFailed(name: String, seconds: Int64, last: String)
        /// The wormhole failed: `reason` as `Failure.reason` names it.
        case wormhole(kind: FailureKind, reason: String, message: String)

        public var kind: FailureKind {
            switch self {
            case .notFound: .notFound
            case .finished, .codeAlreadyGiven, .cancelled: .invalidState
            case .invalidCode, .ownCode: .invalidArgument
            case .inProgress: .busy
            case .remoteExists: .alreadyExists
            case .timedOut, .badPairData, .linkFailed: .unavailable
            case .wormhole(let kind, _, _): kind
            }
        }
        public var reason: String {
            switch self {
            case .notFound: "pairing_not_found"
            case .finished: "pairing_finished"
            case .invalidCode: "invalid_code"
            case .ownCode: "own_code"
            case .codeAlreadyGiven: "code_already_given"
            case .inProgress: "pairing_in_progress"
            case .remoteExists: "remote_exists"
            case .cancelled: "cancelled"
            case .timedOut: "timeout"
            case .badPairData: "bad_pair_data"
            case .linkFailed: "link_failed"
            case .wormhole(_, let reason, _): reason
            }
        }
        public var description: String {
            switch self {
            case .notFound(let id): "no pairing \(id): it finished, was cancelled, or never existed; start again with pair.start"
            case .finished(let id): "pairing \(id) has already finished"
            case .invalidCode(let why): "params.code: \(why); a pairing code looks like 7-guitarist-revenge"
            case .ownCode: "that is this repository's own pairing code; enter the code the *other* repository shows"
            case .codeAlreadyGiven(let id): "the other side's code was already given for pairing \(id)"
            case .inProgress(let name, let repo): "a pairing for \(name) in \(repo) is already under way"
            case .remoteExists(let name, let repo): "\(repo) already has a remote named \(name); choose another name"
            case .cancelled(let id): "pairing \(id) was cancelled; nothing was stored"
            case .timedOut(let message): message + ". Nothing was stored; start pairing again."
            case .badPairData(let why): "\(why); nothing was stored"
            case .linkFailed(let name, let seconds, let last):
                "paired, but could not link to \(name) within \(seconds) s: \(last); the token was removed again, pair once more"
            case .wormhole(_, _, let message): message
            }
        }
    }

    static let defaultTimeout = 600

    let repos: RepositoryService
    let peers: PeerService
    let linking: LinkingService
    let events: EventLog
    let wormhole: Wormhole.Configuration
    let tor: TorManager?
    let sessions = PairingSessions()

    init(repos: RepositoryService, peers: PeerService, linking: LinkingService, events: EventLog,
         wormhole: Wormhole.Configuration, tor: TorManager?) {
        self.repos = repos
        self.peers = peers
        self.linking = linking
        self.events = events
        self.wormhole = wormhole
        self.tor = tor
    }

    private func session(_ id: String) throws(PairingError) -> PairingSession {
        guard let s = sessions.get(id) else { throw .notFound(id: id) }
        return s
    }

    // MARK: pair.start

    /// Starts a pairing; returns once our code is known.
    public func start(_ selector: String, name: String?, timeout: Int?) async throws -> (id: String, code: String, name: String) {
        let repo = try repos.lookup(selector)
        let peerName = try name.map(PeerService.validName) ?? unusedName(repo)
        try checkName(peerName, in: repo)
        let address = try repos.ownAddress(of: repo)
        let session = PairingSession(repo: repo, name: peerName, timeout: .seconds(timeout ?? Self.defaultTimeout))
        sessions.add(session)
        session.run { [self] in await run(session, addresses: [address.address]) }
        do {
            let code = try await session.ourCode.value()
            return (session.id, code.text, peerName.value)
        } catch {
            throw failure(error, session)
        }
    }

    /// git-annex's `unusedPeerRemoteName`: peer1, peer2, … not yet a remote (nor a peer here).
    private func unusedName(_ repo: Registry.Repo) -> PeerName {
        let remotes = ((try? Command.output(["git", "remote"], cwd: repo.path)) ?? "").split(separator: "\n").map(String.init)
        return PeerName.unused(among: Set(remotes).union(repo.peers.map(\.name)))
    }

    private func checkName(_ name: PeerName, in repo: Registry.Repo) throws {
        if linking.remoteURL(name.value, in: repo) != nil { throw PairingError.remoteExists(name: name.value, repo: repo.path) }
        if repo.peers.contains(where: { $0.name == name.value }) { throw PeerService.PeerError.exists(peer: name.value, repo: repo.path) }
        if sessions.active.contains(where: { $0.repo.uuid == repo.uuid && $0.name == name && !$0.outcome.isFulfilled }) {
            throw PairingError.inProgress(name: name.value, repo: repo.path)
        }
    }

    // MARK: pair.submit, pair.cancel

    /// Gives the other side's code; returns once the pairing ended.
    public func submit(id: String, code text: String) async throws -> RemoteInfo {
        let session = try session(id)
        let code: WormholeCode
        do { code = try WormholeCode(userInput: text) } catch { throw PairingError.invalidCode(why: "\(error)") }
        if let ours = try? await session.ourCode.value(), ours == code { throw PairingError.ownCode }
        if !session.outcome.isFulfilled {
            var already = false
            session.update { p in already = p.submitted; p.submitted = true }
            if already { throw PairingError.codeAlreadyGiven(id: session.id) }
            session.theirCode.fulfill(.success(code))
        }
        do { return try await session.outcome.value() } catch { throw failure(error, session) }
    }

    public func cancel(id: String) throws {
        let session = try session(id)
        guard !session.outcome.isFulfilled else { throw PairingError.finished(id: id) }
        session.cancel()
    }

    // MARK: The session

    private func configuration() async -> Wormhole.Configuration {
        var c = wormhole
        c.appID = Wormhole.gitAnnexAppID
        if c.socks == nil, let tor, let s = await tor.socksAddress {
            c.socks = SOCKSProxy(host: s.host, port: s.port)
        }
        return c
    }

    private func progress(_ session: PairingSession, _ stage: String, _ message: String) {
        events.publish(PairProgress(repo: RepositoryService.eventRepo(session.repo), pairing: session.id, stage: stage, message: message))
    }

    private enum Exchanged: Sendable {
        case sent
        case received([UInt8])
    }

    private struct PairTimeout: Error {}

    private func run(_ session: PairingSession, addresses: [String]) async {
        let repo = RepositoryService.eventRepo(session.repo)
        do {
            let theirs: PairData
            do { theirs = try PairData(parsing: try await exchange(session, PairData(halfToken: session.ourHalf, addresses: addresses))) } catch let e as PairData.ParseError {
                throw PairingError.badPairData(why: "\(e)")
            }
            progress(session, "exchanged", "successfully exchanged pairing data; connecting to \(session.name)")
            let remote = try await finish(session, theirs)
            session.outcome.fulfill(.success(remote))
            events.publish(PairSucceeded(repo: repo, pairing: session.id, remote: remote.name, remoteUUID: remote.uuid ?? "",
                                         address: remote.address))
        } catch {
            let failure = failure(error, session)
            session.ourCode.fulfill(.failure(failure))
            session.outcome.fulfill(.failure(failure))
            events.publish(PairFailed(repo: repo, pairing: session.id, reason: failure.reason, error: failure.description))
        }
        // Kept a while so a late pair.submit or pair.cancel hears how it ended.
        let id = session.id
        Task { [weak self] in
            try? await Task.sleep(for: .seconds(300))
            self?.sessions.remove(id)
        }
    }

    /// Sends our pairing data under our code and receives theirs under their code, at once.
    private func exchange(_ session: PairingSession, _ ours: PairData) async throws -> [UInt8] {
        let wormhole = await configuration()
        return try await withThrowingTaskGroup(of: Exchanged.self) { group in
            group.addTask { [self] in
                try await Wormhole.sendFile(ours.serialized, filename: "send", configuration: wormhole) { [self] code in
                    session.ourCode.fulfill(.success(code))
                    events.publish(PairCode(repo: RepositoryService.eventRepo(session.repo), pairing: session.id,
                                            name: session.name.value, code: code.text))
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
    }

    /// Stores the token the other side presents, then links to it (retrying); on failure
    /// the stored token is removed again.
    private func finish(_ session: PairingSession, _ theirs: PairData) async throws -> RemoteInfo {
        guard let accepted = AuthToken(session.ourHalf + theirs.halfToken),
              let presented = AuthToken(theirs.halfToken + session.ourHalf) else {
            throw PairingError.badPairData(why: "the other side's half token is not usable")
        }
        try peers.addPaired(session.repo, name: session.name, token: accepted)
        do {
            return try await link(session, theirs.addresses, token: presented)
        } catch {
            peers.removePaired(session.repo, name: session.name, token: accepted)
            throw error
        }
    }

    /// git-annex's `finishPairing`: every address in turn, then again, until one links. The
    /// first tries usually race the other side storing its token, so they come quicker than
    /// git-annex's fixed 2 s (a failed AUTH costs 50 ms at the listener).
    private func link(_ session: PairingSession, _ addresses: [String], token: AuthToken) async throws -> RemoteInfo {
        var attempt = 0
        var lastError: LinkingService.LinkError?
        let deadline = ContinuousClock.now + session.timeout
        let targets = addresses.compactMap { try? TorAnnexAddress(parsing: $0, token: .forbidden) }
        while ContinuousClock.now < deadline {
            attempt += 1
            for address in targets {
                try Task.checkCancellation()
                do {
                    return try await linking.link(session.repo, name: session.name, peer: address.with(token: token))
                } catch let e as LinkingService.LinkError where e.isTransient {
                    lastError = e
                }
            }
            let delay = [0.1, 0.25, 0.5, 1.0].dropFirst(attempt - 1).first ?? 2.0
            progress(session, "retrying", "unable to connect to \(session.name) (\(lastError?.description ?? "?")); retrying")
            try await Task.sleep(for: .seconds(delay))
        }
        throw PairingError.linkFailed(name: session.name.value, seconds: session.timeout.components.seconds,
                                      last: lastError?.description ?? "no attempt")
    }

    /// One clear error for everything a pairing can run into.
    func failure(_ error: Error, _ session: PairingSession) -> any ServiceError {
        let state = session.state
        if let e = error as? any ServiceError { return e }
        if state.cancelled || error is CancellationError { return PairingError.cancelled(id: session.id) }
        if error is PairTimeout {
            let seconds = session.timeout.components.seconds
            if !state.submitted { return PairingError.timedOut("nobody entered the other repository's code within \(seconds) s") }
            if !state.sent || !state.received {
                return PairingError.timedOut("the other side never came: it did not complete the exchange within \(seconds) s (did it enter our code?)")
            }
            return PairingError.timedOut("pairing did not finish within \(seconds) s")
        }
        guard let w = error as? WormholeClientError else {
            return PairingError.wormhole(kind: .unavailable, reason: "pairing_failed", message: "pairing failed: \(error). Nothing was stored.")
        }
        return Self.wormholeFailure(w)
    }

    static func wormholeFailure(_ w: WormholeClientError) -> PairingError {
        let spent = "Nothing was stored and the code is spent: start pairing again on both sides."
        func unavailable(_ reason: String, _ message: String) -> PairingError { .wormhole(kind: .unavailable, reason: reason, message: message) }
        switch w {
        case .wormhole(.wrongCode):
            return .wormhole(kind: .permissionDenied, reason: "wrong_code", message: "key confirmation failed: the other side used a different code "
                             + "(a typo, or someone guessing). \(spent)")
        case .wormhole(.crowded):
            return unavailable("crowded", "the code's nameplate is crowded: a third client is using the same code. \(spent)")
        case .connectFailed, .upgradeRefused, .unsupportedURL, .tlsFailed:
            return unavailable("mailbox_unreachable", "\(w.description) (set with --wormhole-relay-url or WORMHOLE_RELAY_URL). Nothing was stored.")
        case .wormhole(.connectionLost):
            return unavailable("mailbox_lost", "the connection to the wormhole mailbox server was lost. \(spent)")
        case .wormhole(.transit(let why)):
            return unavailable("transfer_failed", "the pairing data could not be transferred: \(why). \(spent)")
        case .wormhole(.unwelcome), .wormhole(.serverError):
            return unavailable("mailbox_error", "\(w.description). Nothing was stored.")
        case .timedOut:
            return unavailable("timeout", "\(w.description). Nothing was stored.")
        case .wormhole(let other):
            return unavailable("pairing_failed", "pairing failed: \(other.description). \(spent)")
        }
    }
}
