/// libFuzzer targets over annexd's pure parsers and machines. Each target takes the raw
/// input bytes, feeds them to the real code and checks what must hold whatever the bytes:
/// no crash (the sanitizer build catches memory errors and traps), bounded output, and
/// round trips where a codec is symmetric. A broken invariant throws `FuzzViolation`; the
/// fuzzer entry (annexd-fuzz) turns that into a crash, the corpus test into a failure.
public struct FuzzViolation: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Throws `FuzzViolation(why)` unless `condition` holds.
@inline(__always)
func require(_ condition: Bool, _ why: @autoclosure () -> String) throws(FuzzViolation) {
    if !condition { throw FuzzViolation(why()) }
}

public struct FuzzTarget: Sendable {
    public let name: String
    public let run: @Sendable (UnsafeRawBufferPointer) throws(FuzzViolation) -> Void

    /// Runs the target on `bytes` (tests and tools).
    public func run(_ bytes: [UInt8]) throws(FuzzViolation) {
        var failure: FuzzViolation?
        bytes.withUnsafeBytes { buffer in
            do throws(FuzzViolation) { try run(buffer) } catch { failure = error }
        }
        if let failure { throw failure }
    }
}

public enum FuzzTargets {
    /// Every target, by the name used for `ANNEXD_FUZZ_TARGET` and `fuzz/corpus/<name>/`.
    public static let all: [FuzzTarget] = [
        FuzzTarget(name: "p2p-codec", run: P2PFuzz.codec),
        FuzzTarget(name: "p2p-server-preauth", run: P2PFuzz.serverBeforeAuth),
        FuzzTarget(name: "p2p-server-authed", run: P2PFuzz.serverAfterAuth),
        FuzzTarget(name: "annex-key", run: KeyFuzz.key),
        FuzzTarget(name: "rpc", run: RPCFuzz.rpc),
        FuzzTarget(name: "tor-control", run: TorFuzz.controlReplies),
        FuzzTarget(name: "torrc", run: TorFuzz.torrc),
        FuzzTarget(name: "helper-args", run: TorFuzz.helperArguments),
        FuzzTarget(name: "mailbox", run: WormholeFuzz.mailbox),
        FuzzTarget(name: "spake2", run: WormholeFuzz.spake2),
        FuzzTarget(name: "transit", run: WormholeFuzz.transit),
    ]

    public static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }
}

extension UnsafeRawBufferPointer {
    /// The input split at `separator` (empty pieces kept), as at most `limit` pieces.
    func pieces(separator: UInt8, limit: Int = 4096) -> [[UInt8]] {
        Array(split(separator: separator, maxSplits: limit - 1, omittingEmptySubsequences: false).map(Array.init))
    }
}
