/// The server side of the P2P protocol as a pure state machine.
///
/// Input: parsed messages from the client (`receive`) and results of local
/// actions the shell performed (`complete`). Output: actions for the shell.
/// As in git-annex, actions split into network messages and the few local
/// actions that touch the repository; before AUTH-SUCCESS the only local
/// action this machine ever asks for is `.checkAuth`.
///
/// The machine owns the wire: every protocol line the shell writes is a `.send`
/// from here (including CONNECTDONE, `DATA n`, VALID/INVALID, and the ERROR for a
/// line the shell could not read). The shell only streams the bytes of a DATA
/// payload the machine announced (`.streamContent`), and, during CONNECT, relays the
/// git service's own DATA frames until the service exits.
public struct P2PServerMachine: Sendable {
    public struct Config: Sendable {
        public var serverUUID: String
        public var maxVersion: Int
        /// Refuse PUT, REMOVE, REMOVE-BEFORE and `CONNECT git-receive-pack`.
        public var readOnly: Bool
        /// Authentication already happened on another layer (`p2p-stdio`, like `git-annex-shell p2pstdio`).
        public var preauthenticated: Bool
        /// Failed AUTH attempts allowed on one connection before it is closed.
        public var maxAuthAttempts: Int

        public init(serverUUID: String, maxVersion: Int = P2PMessage.maxVersion, readOnly: Bool = false,
                    preauthenticated: Bool = false, maxAuthAttempts: Int = 3) {
            self.serverUUID = serverUUID
            self.maxVersion = maxVersion
            self.readOnly = readOnly
            self.preauthenticated = preauthenticated
            self.maxAuthAttempts = maxAuthAttempts
        }
    }

    /// Work that touches the repository; the shell answers each with one `LocalResult`.
    public enum LocalRequest: Equatable, Sendable {
        case checkAuth(clientUUID: String, token: String)
        case checkPresent(AnnexKey)
        /// Take a shared content lock and hold it until `.unlockContent`.
        case lockContent(AnnexKey)
        /// Remove content; with `before`, only while the server's clock is before that timestamp.
        case remove(AnnexKey, before: Int64?)
        case getTimestamp
        /// May the key be stored here (else `.refused`), is its content present, and how many
        /// bytes of a partial are kept? Answered by `.putCandidate`; the machine decides the reply.
        case preparePut(AnnexKey)
        /// Read exactly `length` bytes of DATA from the connection into the partial file at `offset`.
        case receiveData(AnnexKey, offset: Int64, length: Int64)
        /// Verify the received content and move it into place (or discard it when `valid` is false).
        case storeReceived(AnnexKey, valid: Bool)
        /// Open present content for a GET under a shared content lock, which the shell holds
        /// until the `.streamContent` that follows (or the session ends). Answered by
        /// `.contentOpened(size:)` or `.contentAbsent`. (`offset` is the GET's, kept for the machine.)
        case openContent(AnnexKey, offset: Int64)
        /// Write exactly `length` bytes of the opened content from `offset` (the machine has
        /// sent `DATA length`), then release it. Answered by `.contentStreamed`.
        case streamContent(AnnexKey, offset: Int64, length: Int64)
        /// Block until refs change; the first request of a session answers at once.
        case waitForChange
        /// Run a git service and relay its protocol in DATA frames until it exits.
        /// Answered by `.serviceFinished(exitCode:)`; the machine sends CONNECTDONE and ends the session.
        case connect(service: String)
    }

    public enum LocalResult: Equatable, Sendable {
        case authenticated(Bool)
        /// The token is valid but grants read-only access (a read-only peer).
        case authenticatedReadOnly
        case present(Bool)
        case locked(Bool)
        case done(Bool)
        case timestamp(Int64)
        /// For `.preparePut`: is the content present, and the size of a kept partial (0: none).
        case putCandidate(present: Bool, partialSize: Int64)
        /// All announced bytes arrived (false: the connection broke; the partial is kept).
        case received(complete: Bool)
        case stored(Bool)
        /// For `.openContent`: the content's size now.
        case contentOpened(size: Int64)
        case contentAbsent
        /// All announced bytes went out (false: the file shrank; the session must end), and
        /// whether the file stayed unchanged while they did (false: send INVALID).
        case contentStreamed(complete: Bool, unchanged: Bool)
        /// The request cannot be served; the text is sent as ERROR and the session goes on.
        case refused(String)
        case changed([String])
        /// The service exited with this code.
        case serviceFinished(exitCode: Int)
    }

    /// Local work that needs no answer.
    public enum Effect: Equatable, Sendable {
        case unlockContent(AnnexKey)
        /// Throw away content received for a PUT the client did not vouch for.
        case discardReceived(AnnexKey)
        /// Throw away a kept partial that cannot be resumed (longer than the key's size).
        case discardPartial(AnnexKey)
    }

    public enum Action: Equatable, Sendable {
        case send(P2PMessage)
        case local(LocalRequest)
        case effect(Effect)
        /// End the session (the reason is for logs).
        case close(String)
    }

    enum State: Equatable, Sendable {
        case awaitingAuth(failures: Int)
        case ready
        case waiting(LocalRequest)
        case locked(AnnexKey)
        case putAwaitingData(AnnexKey, offset: Int64)
        case putAwaitingValidity(AnnexKey)
        case getAwaitingResult(AnnexKey)
        case closed
    }

    public let config: Config
    private(set) var state: State
    public private(set) var version = 0
    public private(set) var clientUUID: String?
    public private(set) var isAuthenticated: Bool
    /// Write access refused: from the config, or because the peer's token is read-only.
    public private(set) var readOnly: Bool
    public var isClosed: Bool { state == .closed }

    public init(config: Config, clientUUID: String? = nil) {
        self.config = config
        self.clientUUID = clientUUID
        self.state = config.preauthenticated ? .ready : .awaitingAuth(failures: 0)
        self.isAuthenticated = config.preauthenticated
        self.readOnly = config.readOnly
    }

    /// What to do when the session opens.
    public mutating func start() -> [Action] {
        config.preauthenticated ? [.send(.authSuccess(uuid: config.serverUUID))] : []
    }

    /// Input the shell could not turn into a line (too long, not UTF-8): the client is told
    /// why, and the session ends (git-annex-shell exits without a word).
    public mutating func receiveUnreadable(_ why: String) -> [Action] {
        if state == .closed { return [] }
        return closeAfter([.send(.error(why))], why)
    }

    /// A line that did not parse. git-annex answers and keeps the session open.
    public mutating func receiveUnparseable(_ error: P2PParseError) -> [Action] {
        let reply = P2PServerMachine.Action.send(.error(error.errorText))
        switch state {
        case .awaitingAuth:
            return closeWith("ERROR before authentication: \(error.errorText)")
        case .closed:
            return []
        // Where a particular reply was expected, an unparseable line ends the exchange, as
        // any other wrong message does (git-annex: "expected DATA" etc.); the client saw ERROR.
        case .locked(let key):
            state = .ready
            return [.effect(.unlockContent(key)), reply]
        case .putAwaitingValidity(let key):
            state = .ready
            return [.effect(.discardReceived(key)), reply]
        case .putAwaitingData, .getAwaitingResult:
            state = .ready
            return [reply]
        case .ready, .waiting:
            return [reply]
        }
    }

    public mutating func receive(_ message: P2PMessage) -> [Action] {
        switch state {
        case .closed:
            return []
        case .awaitingAuth:
            if case .auth(let uuid, let token) = message {
                return wait(.checkAuth(clientUUID: uuid, token: token))
            }
            return closeWith("only AUTH is allowed before authentication")
        case .waiting:
            // The client may not send while the server works on its request.
            return closeWith("message \(message.command) while a request was in progress")
        case .locked(let key):
            if case .unlockContent = message {
                state = .ready
                return [.effect(.unlockContent(key))]
            }
            if case .error = message { return closeAfter([.effect(.unlockContent(key))], "client sent ERROR") }
            // As git-annex: the lock ends and the message is not acted on.
            state = .ready
            return [.effect(.unlockContent(key)), .send(.error("expected UNLOCKCONTENT"))]
        case .putAwaitingData(let key, let offset):
            switch message {
            case .data(let length):
                return wait(.receiveData(key, offset: offset, length: length))
            case .dataPresent where version >= 4:
                return wait(.checkPresent(key))
            case .error:
                return closeWith("client sent ERROR")
            default:
                state = .ready
                return [.send(.error("expected DATA"))]
            }
        case .putAwaitingValidity(let key):
            switch message {
            case .valid: return wait(.storeReceived(key, valid: true))
            case .invalid: return wait(.storeReceived(key, valid: false))
            case .error: return closeAfter([.effect(.discardReceived(key))], "client sent ERROR")
            default:
                // Discard what arrived: the client did not vouch for it.
                state = .ready
                return [.effect(.discardReceived(key)), .send(.error("expected VALID or INVALID"))]
            }
        case .getAwaitingResult:
            switch message {
            case .success, .failure:
                state = .ready
                return []
            case .successPlus where version >= 2, .failurePlus where version >= 2:
                state = .ready
                return []
            case .error:
                return closeWith("client sent ERROR")
            default:
                state = .ready
                return [.send(.error(version >= 2 ? "expected SUCCESS or SUCCESS-PLUS or FAILURE or FAILURE-PLUS"
                                                  : "expected SUCCESS or FAILURE"))]
            }
        case .ready:
            return receiveReady(message)
        }
    }

    private mutating func receiveReady(_ message: P2PMessage) -> [Action] {
        switch message {
        case .version(let v):
            version = max(0, min(v, config.maxVersion))
            return [.send(.version(version))]
        case .bypass:
            return version >= 2 ? [] : [.send(.error("unexpected command"))]
        case .checkPresent(let key):
            return wait(.checkPresent(key))
        case .lockContent(let key):
            return wait(.lockContent(key))
        case .remove(let key):
            if readOnly { return readOnlyRefusal }
            return wait(.remove(key, before: nil))
        case .removeBefore(let ts, let key) where version >= 3:
            if readOnly { return readOnlyRefusal }
            return wait(.remove(key, before: ts))
        case .getTimestamp where version >= 3:
            return wait(.getTimestamp)
        case .get(let offset, _, let key):
            return wait(.openContent(key, offset: offset))
        case .put(_, let key):
            if readOnly { return readOnlyRefusal }
            return wait(.preparePut(key))
        case .notifyChange:
            return wait(.waitForChange)
        case .connect(let service):
            switch service {
            case "git-upload-pack": break
            case "git-receive-pack": if readOnly { return readOnlyRefusal }
            default: return [.send(.error("unsupported service \(KeyError.printable(service))"))]
            }
            return wait(.connect(service: service))
        case .error:
            return closeWith("client sent ERROR")
        default:
            return [.send(.error("unexpected command"))]
        }
    }

    public mutating func complete(_ result: LocalResult) -> [Action] {
        guard case .waiting(let request) = state else {
            preconditionFailure("local result \(result) with no request pending (state \(state))")
        }
        state = .ready
        if case .refused(let why) = result {
            if case .checkAuth = request { preconditionFailure("AUTH cannot be refused, only failed") }
            return [.send(.error(why))]
        }
        switch (request, result) {
        case (.checkAuth(let uuid, _), .authenticatedReadOnly):
            readOnly = true
            clientUUID = uuid
            isAuthenticated = true
            return [.send(.authSuccess(uuid: config.serverUUID))]
        case (.checkAuth(let uuid, _), .authenticated(let ok)):
            if ok {
                clientUUID = uuid
                isAuthenticated = true
                return [.send(.authSuccess(uuid: config.serverUUID))]
            }
            let failures = pendingAuthFailures + 1
            if failures >= config.maxAuthAttempts {
                return closeAfter([.send(.authFailure)], "too many failed AUTH attempts")
            }
            state = .awaitingAuth(failures: failures)
            return [.send(.authFailure)]
        case (.checkPresent(let key), .present(let present)):
            // After DATA-PRESENT this answers the PUT; otherwise CHECKPRESENT.
            _ = key
            return [.send(present ? .success : .failure)]
        case (.lockContent(let key), .locked(let ok)):
            if ok { state = .locked(key) }
            return [.send(ok ? .success : .failure)]
        case (.remove, .done(let ok)):
            return [.send(ok ? .success : .failure)]
        case (.getTimestamp, .timestamp(let t)):
            return [.send(.timestamp(t))]
        case (.preparePut(let key), .putCandidate(let present, let partialSize)):
            return answerPut(key, present: present, partialSize: partialSize)
        case (.receiveData(let key, _, _), .received(let complete)):
            guard complete else { return closeWith("DATA ended early; partial content kept for resume") }
            if version >= 1 {
                state = .putAwaitingValidity(key)
                return []
            }
            return wait(.storeReceived(key, valid: true))
        case (.storeReceived, .stored(let ok)):
            return [.send(ok ? .success : .failure)]
        case (.openContent(let key, _), .contentAbsent):
            // What git-annex sends for content it does not have: an empty DATA, marked INVALID.
            state = .getAwaitingResult(key)
            return [.send(.data(length: 0))] + (version >= 1 ? [.send(.invalid)] : [])
        case (.openContent(let key, let offset), .contentOpened(let size)):
            // An offset past the end sends nothing (DATA 0), as git-annex does.
            let start = min(max(offset, 0), size)
            return [.send(.data(length: size - start))] + wait(.streamContent(key, offset: start, length: size - start))
        case (.streamContent(let key, _, _), .contentStreamed(let complete, let unchanged)):
            // Fewer bytes than announced: only closing tells the client.
            guard complete else { return closeWith("content of \(key) changed size while it was sent") }
            state = .getAwaitingResult(key)
            return version >= 1 ? [.send(unchanged ? .valid : .invalid)] : []
        case (.waitForChange, .changed(let refs)):
            return [.send(.changed(refs))]
        case (.connect, .serviceFinished(let code)):
            return closeAfter([.send(.connectDone(exitCode: code))], "service finished")
        default:
            preconditionFailure("local result \(result) does not answer \(request)")
        }
    }

    /// PUT: ALREADY-HAVE for present content, else PUT-FROM the kept partial's size. A partial
    /// longer than the key's size cannot be resumed: it is discarded and the PUT starts at 0.
    private mutating func answerPut(_ key: AnnexKey, present: Bool, partialSize: Int64) -> [Action] {
        if present { return [.send(.alreadyHave)] }
        var actions: [Action] = []
        var offset = partialSize
        if let size = key.size, offset > size {
            actions.append(.effect(.discardPartial(key)))
            offset = 0
        }
        state = .putAwaitingData(key, offset: offset)
        return actions + [.send(.putFrom(offset: offset))]
    }

    private var authFailures: Int {
        if case .awaitingAuth(let f) = state { return f }
        return 0
    }

    private var readOnlyRefusal: [Action] {
        [.send(.error("this repository is read-only; write access denied"))]
    }

    private mutating func wait(_ request: LocalRequest) -> [Action] {
        // A failed AUTH returns to awaitingAuth with the count it had.
        if case .checkAuth = request { pendingAuthFailures = authFailures }
        state = .waiting(request)
        return [.local(request)]
    }

    private var pendingAuthFailures = 0

    private mutating func closeWith(_ reason: String) -> [Action] {
        closeAfter([], reason)
    }

    private mutating func closeAfter(_ actions: [Action], _ reason: String) -> [Action] {
        state = .closed
        return actions + [.close(reason)]
    }
}
