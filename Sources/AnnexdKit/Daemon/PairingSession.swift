import Foundation
import Shared
import Synchronization

/// The pairings under way (and, for a while, those that ended).
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
    let name: PeerName
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

    init(repo: Registry.Repo, name: PeerName, timeout: Duration) {
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

