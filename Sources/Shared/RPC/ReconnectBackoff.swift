/// When to dial a watched remote (or annexd, for annex-notify) again: delays doubling from `initial` after each failed
/// attempt, capped at `cap`, each spread by up to ±`jitter` (a fraction) so that remotes
/// that went away together do not all come back in the same instant. A connection that came
/// up starts the sequence again. Pure: the caller gives the randomness.
public struct ReconnectBackoff: Sendable, Equatable {
    public var initial: Double
    public var cap: Double
    public var jitter: Double
    /// Failed attempts since the last connection that came up.
    public private(set) var failures = 0

    public init(initial: Double = 1, cap: Double = 60, jitter: Double = 0.2) {
        precondition(initial > 0 && cap >= initial && (0..<1).contains(jitter))
        self.initial = initial
        self.cap = cap
        self.jitter = jitter
    }

    /// Another attempt failed (or a connection ended): seconds before the next one.
    /// `random` is uniform in 0..<1.
    public mutating func failed(random: Double) -> Double {
        // 2^failures stops growing long before it could overflow: the cap is reached first.
        let base = min(cap, initial * Double(1 << min(failures, 30)))
        failures += 1
        let spread = base * jitter * (2 * random - 1)
        return min(cap, max(initial * (1 - jitter), base + spread))
    }

    /// A connection came up: the next failure waits `initial` again.
    public mutating func connected() { failures = 0 }
}
