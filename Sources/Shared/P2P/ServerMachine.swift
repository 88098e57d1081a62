/// The server side of the P2P protocol as a pure state machine.
///
/// Input: parsed messages from the client (`receive`) and results of local
/// actions the shell performed (`complete`). Output: actions for the shell.
/// As in git-annex, actions split into network messages and the few local
/// actions that touch the repository; before AUTH-SUCCESS the only local
/// action this machine ever asks for is `.checkAuth`.
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
        /// Is the content present, and if not, how many bytes of a partial are kept (the resume offset)?
        case preparePut(AnnexKey)
        /// Read exactly `length` bytes of DATA from the connection into the partial file at `offset`.
        case receiveData(AnnexKey, offset: Int64, length: Int64)
        /// Verify the received content and move it into place (or discard it when `valid` is false).
        case storeReceived(AnnexKey, valid: Bool)
        /// Send `DATA n` and the content from `offset`, then (`withValidity`) VALID or INVALID.
        /// Absent content is sent as git-annex does: `DATA 0`, then INVALID.
        case sendContent(AnnexKey, offset: Int64, withValidity: Bool)
        /// Block until refs change; the first request of a session answers at once.
        case waitForChange
        /// Run a git service and relay its protocol in DATA frames; the session ends after CONNECTDONE.
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
        case putOffset(Int64)
        case alreadyHave
        /// All announced bytes arrived (false: the connection broke; the partial is kept).
        case received(complete: Bool)
        case stored(Bool)
        /// DATA was sent in full (false: fewer bytes than announced; the session must end).
        case sent(ok: Bool)
        /// The request cannot be served; the text is sent as ERROR and the session goes on.
        case refused(String)
        case changed([String])
        /// The service ran; the shell has sent CONNECTDONE.
        case serviceFinished
    }

    /// Local work that needs no answer.
    public enum Effect: Equatable, Sendable {
        case unlockContent(AnnexKey)
        /// Throw away content received for a PUT the client did not vouch for.
        case discardReceived(AnnexKey)
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
            return wait(.sendContent(key, offset: offset, withValidity: version >= 1))
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
        case (.preparePut, .alreadyHave):
            return [.send(.alreadyHave)]
        case (.preparePut(let key), .putOffset(let offset)):
            state = .putAwaitingData(key, offset: offset)
            return [.send(.putFrom(offset: offset))]
        case (.receiveData(let key, _, _), .received(let complete)):
            guard complete else { return closeWith("DATA ended early; partial content kept for resume") }
            if version >= 1 {
                state = .putAwaitingValidity(key)
                return []
            }
            return wait(.storeReceived(key, valid: true))
        case (.storeReceived, .stored(let ok)):
            return [.send(ok ? .success : .failure)]
        case (.sendContent(let key, _, _), .sent(let ok)):
            if ok {
                state = .getAwaitingResult(key)
                return []
            }
            // Fewer bytes than announced: only closing tells the client.
            return closeWith("content of \(key) changed size while it was sent")
        case (.waitForChange, .changed(let refs)):
            return [.send(.changed(refs))]
        case (.connect, .serviceFinished):
            return closeWith("service finished")
        default:
            preconditionFailure("local result \(result) does not answer \(request)")
        }
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
