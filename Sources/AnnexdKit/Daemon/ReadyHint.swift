import Foundation

/// What a person who just started annexd in a terminal reads once it is ready, on stderr:
/// with no repository yet, the next commands (add a repository, then invite or pair) and where
/// the socket and the logs are; with repositories, nothing beyond the usual log line (a
/// git-annex user expects a daemon that works to stay quiet).
public enum ReadyHint {
    /// Where annexd's log lines go, for people.
    public enum LogDestination: Equatable, Sendable {
        case terminal
        /// stderr goes to systemd's journal (JOURNAL_STREAM is set).
        case journal

        public static func current(_ env: [String: String] = ProcessInfo.processInfo.environment) -> LogDestination {
            (env["JOURNAL_STREAM"]?.isEmpty == false) ? .journal : .terminal
        }

        var text: String {
            switch self {
            case .terminal: return "this terminal (stderr)"
            case .journal: return "the journal (journalctl --user -u annexd)"
            }
        }
    }

    /// The text to print once ready, or nil when there is nothing to say. `cliSocket` is the
    /// socket annex-cli finds by itself (its own rules), so the hint says how to reach this one
    /// when they differ.
    public static func text(repositories: Int, socket: String, cliSocket: String, logs: LogDestination) -> String? {
        guard repositories == 0 else { return nil }
        var lines = [
            "annexd is ready, with no repository yet. Next:",
            "  annex-cli repo add PATH        serve a git-annex repository (git annex init done)",
            "  annex-cli invite --repo PATH   an address for the other side's `git annex p2p --link`",
            "  annex-cli pair --repo PATH     pair with another annexd or `git annex p2p --pair`",
            "Socket: \(socket)    Logs: \(logs.text)",
        ]
        if socket != cliSocket {
            lines.append("annex-cli looks for \(cliSocket): give it --socket \(socket) (or set ANNEXD_SOCKET)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The socket annex-cli uses without --socket: $ANNEXD_SOCKET, else the daemon's default.
    public static func cliSocket(_ env: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let s = env["ANNEXD_SOCKET"], !s.isEmpty { return s }
        return Daemon.Config.defaultSocketPath()
    }
}
