/// Why annex-tor-helper failed: a stable `reason` string for the JSON result and a
/// distinct exit code for each kind of failure.
public enum HelperReason: String, Sendable, CaseIterable {
    case usage                  // unknown/repeated flag, missing value, no command
    case invalidArgument = "invalid_argument"
    case setuidRefused = "setuid_refused"
    case torrcUnreadable = "torrc_unreadable"
    case verifyFailed = "verify_failed"
    case reloadFailed = "reload_failed"
    case timeout
    case ioError = "io_error"
    case conflict
    case rollbackFailed = "rollback_failed"

    public var exitCode: Int32 {
        switch self {
        case .usage, .invalidArgument: 2
        case .setuidRefused: 3
        case .torrcUnreadable: 4
        case .verifyFailed: 5
        case .reloadFailed: 6
        case .timeout: 7
        case .ioError: 8
        case .conflict: 9
        case .rollbackFailed: 10
        }
    }

    /// One line per exit code, for --help and the README.
    public static let exitCodeTable = """
          0  success (also when nothing needed changing: "changed": false)
          2  usage or invalid argument (reason "usage" / "invalid_argument"); nothing touched
          3  refused: running setuid/setgid, or the binary has the setuid/setgid bit
          4  torrc unreadable
          5  tor --verify-config (or the helper's own check) rejected the new torrc; nothing changed
          6  tor reload failed; torrc restored from the backup and tor reloaded again
          7  timed out waiting for the hostname file / control socket; torrc restored, tor reloaded
          8  I/O error writing the torrc, its backup or the socket directory
          9  conflict: the port or an option is already set otherwise in torrc; nothing changed
         10  rolling back failed: torrc may hold the new version (see "backup")
        """
}

public struct HelperFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: HelperReason
    public var message: String

    public init(_ reason: HelperReason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public static func invalid(_ message: String) -> HelperFailure { HelperFailure(.invalidArgument, message) }
    public static func usage(_ message: String) -> HelperFailure { HelperFailure(.usage, message) }

    public var description: String { "\(reason.rawValue): \(message)" }
}
