import Foundation
import Shared
import ServiceLifecycle

extension Daemon {
    /// The daemon's long-running parts as swift-service-lifecycle services, in start order:
    /// the repositories' listeners, then tor (which publishes their onions), then the RPC
    /// server (so a client sees everything served). A `ServiceGroup` stops them in reverse:
    /// RPC first, then tor, then the listeners (transfers in flight keep their partials).
    public func lifecycle(onReady: @escaping @Sendable () -> Void = {}, onStopping: @escaping @Sendable () -> Void = {}) -> [any Service] {
        let listening = OneShot<Void>()
        let torStarted = OneShot<Void>()
        return [
            RepositoriesLifecycle(repos: repos, ready: listening),
            TorLifecycle(tor: tor, repos: repos, after: listening, ready: torStarted),
            CancelledAtShutdown(after: torStarted) { [transfers] in await transfers.run() },
            CancelledAtShutdown(after: torStarted) { [watch] in await watch.run() },
            RPCLifecycle(daemon: self, after: torStarted, onReady: onReady, onStopping: onStopping),
        ]
    }
}

/// Runs `body` once `after` is done (tor started, so peers can be reached) until shutdown,
/// which cancels it: the transfer scheduler (running transfers stop with their partials kept,
/// the queue is saved), the remote watchers (every watcher stops).
struct CancelledAtShutdown: Service {
    let after: OneShot<Void>
    let body: @Sendable () async -> Void

    func run() async throws {
        try await after.value()
        let task = Task { await body() }
        try? await gracefulShutdown()
        task.cancel()
        await task.value
    }
}

/// Serves every registered repository until shutdown.
struct RepositoriesLifecycle: Service {
    let repos: RepositoryService
    let ready: OneShot<Void>

    func run() async throws {
        repos.startAll()
        ready.fulfill(.success(()))
        try? await gracefulShutdown()
        repos.stopAll()
    }
}

/// Runs the tor manager with an onion for every repository being served.
struct TorLifecycle: Service {
    let tor: TorManager?
    let repos: RepositoryService
    let after: OneShot<Void>
    let ready: OneShot<Void>

    func run() async throws {
        try await after.value()
        if let tor {
            await repos.addServedOnions()
            await tor.start()
        }
        ready.fulfill(.success(()))
        try? await gracefulShutdown()
        await tor?.stop()
    }
}

/// Answers JSON-RPC on the daemon's socket until shutdown.
struct RPCLifecycle: Service {
    let daemon: Daemon
    let after: OneShot<Void>
    let onReady: @Sendable () -> Void
    let onStopping: @Sendable () -> Void

    func run() async throws {
        try await after.value()
        let events = daemon.events
        let server = RPCServer(socketPath: daemon.config.socketPath, group: daemon.rpcGroup, dispatcher: DaemonAPI.dispatcher(daemon)) { conn in
            if let id = conn.setSubscription(nil) { events.unsubscribe(id) }
        }
        try server.start()
        daemon.logger.info("annexd ready: \(daemon.repos.registry.all.count) repositories, RPC on \(daemon.config.socketPath)")
        onReady()
        try? await gracefulShutdown()
        onStopping()
        events.publish(DaemonStopping())
        server.stop()
    }
}
