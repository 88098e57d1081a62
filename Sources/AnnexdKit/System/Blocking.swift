import Foundation

/// Runs blocking work (a subprocess, a connect through SOCKS) on a thread of
/// its own, so it holds neither the event loop nor a concurrency-pool thread.
public enum Blocking {
    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { cont in
            Thread {
                do { cont.resume(returning: try body()) } catch { cont.resume(throwing: error) }
            }.start()
        }
    }
}
