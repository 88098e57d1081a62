/// The client side of the P2P protocol as a pure state machine: one request
/// at a time, the shell moving content in and out when told to.
public struct P2PClientMachine: Sendable {
    public enum Request: Equatable, Sendable {
        case checkPresent(AnnexKey)
        case lockContent(AnnexKey)
        case unlockContent
        case remove(AnnexKey)
        case removeBefore(timestamp: Int64, key: AnnexKey)
        case getTimestamp
        /// `file` is the AssociatedFile field as on the wire ("" for none).
        case get(AnnexKey, offset: Int64, file: String)
        case put(AnnexKey, file: String)
        /// CONNECT git-upload-pack / git-receive-pack: the git protocol then travels in DATA
        /// frames both ways (`relayToService`, `relayFromService`) until the server's CONNECTDONE.
        case connect(service: String)
        /// NOTIFYCHANGE: the first on a connection is answered at once (the server's current
        /// refs); each later one when the server's refs next change.
        case notifyChange
    }

    public enum Outcome: Equatable, Sendable {
        /// The server is ready: its UUID and the negotiated version.
        case connected(serverUUID: String, version: Int)
        case success(Bool)
        case timestamp(Int64)
        case alreadyHave
        case unlocked
        /// The server's git service exited with this code (CONNECTDONE); the server then closes.
        case connectDone(exitCode: Int)
        /// CHANGED: what changed, as the server names it (commit SHAs by annexd and git-annex,
        /// ref names by the protocol's spec and older annexd; possibly empty).
        case changed([String])
    }

    public enum ClientError: Error, Equatable, Sendable, CustomStringConvertible {
        case authFailed
        case remoteError(String)
        case unexpected(String, expecting: String)
        case busy
        case closed

        public var description: String {
            switch self {
            case .authFailed: return "the server refused authentication (wrong or revoked token)"
            case .remoteError(let e): return "the server said: \(e)"
            case .unexpected(let got, let expecting): return "protocol error: expected \(expecting), got \"\(got)\""
            case .busy: return "a request is already in progress on this connection"
            case .closed: return "the connection is closed"
            }
        }
    }

    public enum Action: Equatable, Sendable {
        case send(P2PMessage)
        /// Read `length` bytes of DATA payload into the partial at the GET's offset; answer `dataReceived`.
        case receiveData(AnnexKey, offset: Int64, length: Int64)
        /// Check what arrived (`valid` nil: protocol v0, no word from the server; false: INVALID) and
        /// store it; answer `verified`.
        case verify(AnnexKey, valid: Bool?)
        /// Send `DATA n` and the content from `offset`; answer `dataSent` (false: it changed while sent).
        case sendData(AnnexKey, offset: Int64)
        /// CONNECT: read `length` bytes of DATA payload and pass them to the local git.
        case relayToService(length: Int64)
        case finished(Outcome)
        case failed(ClientError)
    }

    public enum LocalResult: Equatable, Sendable {
        case dataReceived(complete: Bool)
        case verified(Bool)
        case dataSent(valid: Bool)
    }

    enum State: Equatable, Sendable {
        case awaitingAuthResult
        case awaitingVersion(serverUUID: String)
        case ready
        case awaiting(Request)
        case receivingData(AnnexKey)
        case awaitingValidity(AnnexKey)
        case verifying(AnnexKey)
        case sendingData
        case awaitingPutResult
        case locked
        /// CONNECT in progress: DATA frames both ways until CONNECTDONE.
        case relaying
        /// After CONNECTDONE: the server closes; a repeated CONNECTDONE (10.20230126 sends two) is ignored.
        case connectDone
        case closed
    }

    /// The largest DATA frame accepted while relaying git's protocol. git-annex and annexd send
    /// what one read of the service's output gave (64 KiB); a bigger frame is refused rather
    /// than trusted.
    public static let maxRelayFrame: Int64 = 8 << 20

    public let maxVersion: Int
    private(set) var state: State = .awaitingAuthResult
    public private(set) var version = 0
    public var isReady: Bool { state == .ready || state == .locked }

    public init(maxVersion: Int = P2PMessage.maxVersion) {
        self.maxVersion = maxVersion
    }

    /// Opens the session: with credentials, AUTH; without (p2pstdio), wait for AUTH-SUCCESS.
    public mutating func start(clientUUID: String?, token: String?) -> [Action] {
        state = .awaitingAuthResult
        if let clientUUID, let token { return [.send(.auth(uuid: clientUUID, token: token))] }
        return []
    }

    public mutating func request(_ r: Request) -> [Action] {
        if case .unlockContent = r, state == .locked {
            state = .ready
            return [.send(.unlockContent), .finished(.unlocked)]
        }
        guard state == .ready else { return [.failed(state == .closed ? .closed : .busy)] }
        state = .awaiting(r)
        switch r {
        case .checkPresent(let k): return [.send(.checkPresent(k))]
        case .lockContent(let k): return [.send(.lockContent(k))]
        case .unlockContent: state = .ready; return [.failed(.unexpected("UNLOCKCONTENT", expecting: "a held lock"))]
        case .remove(let k): return [.send(.remove(k))]
        case .removeBefore(let t, let k): return [.send(.removeBefore(timestamp: t, key: k))]
        case .getTimestamp: return [.send(.getTimestamp)]
        case .get(let k, let o, let f): return [.send(.get(offset: o, file: f, key: k))]
        case .put(let k, let f): return [.send(.put(file: f, key: k))]
        case .connect(let service):
            state = .relaying
            return [.send(.connect(service: service))]
        case .notifyChange: return [.send(.notifyChange)]
        }
    }

    /// CONNECT: `count` bytes the local git wrote, to go to the server as one DATA frame (the
    /// shell writes the bytes after it). Nothing once the service is done.
    public func relayFromService(count: Int) -> [Action] {
        guard state == .relaying, count > 0 else { return [] }
        precondition(Int64(count) <= Self.maxRelayFrame, "a relayed frame of \(count) bytes")
        return [.send(.data(length: Int64(count)))]
    }

    public mutating func receive(_ m: P2PMessage) -> [Action] {
        switch (state, m) {
        case (.awaitingAuthResult, .authSuccess(let uuid)):
            state = .awaitingVersion(serverUUID: uuid)
            return [.send(.version(maxVersion))]
        case (.awaitingAuthResult, .authFailure):
            return fail(.authFailed)
        case (.awaitingVersion(let uuid), .version(let v)):
            guard v <= maxVersion else { return fail(.unexpected(m.wireLine, expecting: "VERSION <= \(maxVersion)")) }
            version = v
            state = .ready
            return [.finished(.connected(serverUUID: uuid, version: v))]
        case (.awaitingVersion(let uuid), .error):
            // A server that does not know VERSION speaks v0.
            version = 0
            state = .ready
            return [.finished(.connected(serverUUID: uuid, version: 0))]

        case (.relaying, .data(let n)):
            guard n <= Self.maxRelayFrame else {
                return fail(.unexpected(m.wireLine, expecting: "DATA of at most \(Self.maxRelayFrame) bytes"))
            }
            return [.relayToService(length: n)]
        case (.relaying, .connectDone(let code)):
            state = .connectDone
            return [.finished(.connectDone(exitCode: code))]
        case (.connectDone, .connectDone):
            return []
        case (.relaying, .error(let text)):
            state = .closed
            return [.failed(.remoteError(text))]

        case (.awaiting(let r), .error(let text)):
            state = .ready
            _ = r
            return [.failed(.remoteError(text))]

        case (.awaiting(.checkPresent), .success), (.awaiting(.remove), .success),
             (.awaiting(.removeBefore), .success):
            state = .ready
            return [.finished(.success(true))]
        case (.awaiting(.checkPresent), .failure), (.awaiting(.remove), .failure),
             (.awaiting(.removeBefore), .failure), (.awaiting(.lockContent), .failure):
            state = .ready
            return [.finished(.success(false))]
        case (.awaiting(.remove), .successPlus), (.awaiting(.removeBefore), .successPlus):
            state = .ready
            return [.finished(.success(true))]
        case (.awaiting(.remove), .failurePlus), (.awaiting(.removeBefore), .failurePlus):
            state = .ready
            return [.finished(.success(false))]
        case (.awaiting(.lockContent), .success):
            state = .locked
            return [.finished(.success(true))]
        case (.awaiting(.getTimestamp), .timestamp(let t)):
            state = .ready
            return [.finished(.timestamp(t))]
        case (.awaiting(.notifyChange), .changed(let refs)):
            state = .ready
            return [.finished(.changed(refs))]

        case (.awaiting(.get(let k, let offset, _)), .data(let n)):
            state = .receivingData(k)
            return [.receiveData(k, offset: offset, length: n)]
        case (.awaitingValidity(let k), .valid):
            state = .verifying(k)
            return [.verify(k, valid: true)]
        case (.awaitingValidity(let k), .invalid):
            state = .verifying(k)
            return [.verify(k, valid: false)]

        case (.awaiting(.put), .alreadyHave), (.awaiting(.put), .alreadyHavePlus):
            state = .ready
            return [.finished(.alreadyHave)]
        case (.awaiting(.put(let k, _)), .putFrom(let offset)):
            state = .sendingData
            return [.sendData(k, offset: offset)]
        case (.awaitingPutResult, .success), (.awaitingPutResult, .successPlus):
            state = .ready
            return [.finished(.success(true))]
        case (.awaitingPutResult, .failure), (.awaitingPutResult, .failurePlus):
            state = .ready
            return [.finished(.success(false))]
        case (.awaitingPutResult, .error(let text)):
            state = .ready
            return [.failed(.remoteError(text))]

        default:
            return fail(.unexpected(m.wireLine, expecting: expecting))
        }
    }

    public mutating func complete(_ result: LocalResult) -> [Action] {
        switch (state, result) {
        case (.receivingData(let k), .dataReceived(let complete)):
            guard complete else { return fail(.closed) }
            if version >= 1 { state = .awaitingValidity(k); return [] }
            state = .verifying(k)
            return [.verify(k, valid: nil)]
        case (.verifying, .verified(let ok)):
            state = .ready
            return [.send(ok ? .success : .failure), .finished(.success(ok))]
        case (.sendingData, .dataSent(let valid)):
            state = .awaitingPutResult
            return version >= 1 ? [.send(valid ? .valid : .invalid)] : []
        default:
            preconditionFailure("local result \(result) in state \(state)")
        }
    }

    /// The connection ended.
    public mutating func closed() {
        state = .closed
    }

    private var expecting: String {
        switch state {
        case .awaitingAuthResult: return "AUTH-SUCCESS or AUTH-FAILURE"
        case .awaitingVersion: return "VERSION"
        case .awaiting(.put): return "PUT-FROM or ALREADY-HAVE"
        case .awaiting(.get): return "DATA"
        case .awaiting(.getTimestamp): return "TIMESTAMP"
        case .awaiting(.notifyChange): return "CHANGED"
        case .awaitingValidity: return "VALID or INVALID"
        case .relaying: return "DATA or CONNECTDONE"
        case .awaiting, .awaitingPutResult: return "SUCCESS or FAILURE"
        default: return "nothing"
        }
    }

    private mutating func fail(_ e: ClientError) -> [Action] {
        let wasReadyForMore = state != .awaitingAuthResult
        state = .closed
        return wasReadyForMore ? [.send(.error(e.description)), .failed(e)] : [.failed(e)]
    }
}
