import Foundation
import Shared

extension Daemon {
    public struct Config: Sendable {
        public var stateDir: String
        public var socketPath: String
        public var tor: String
        public var socksHost: String
        public var socksPort: Int
        /// `--socks` was given: peers are dialled through it whatever tor is in use.
        public var socksExplicit = false
        /// Limits of every repository's P2P listener (AUTH delays, connection caps).
        public var listenerLimits = P2PListener.Limits()
        /// Unfinished transfers that may wait at once (`queue_full` past it).
        public var maxQueuedTransfers = 100_000
        /// Reconnect delays and debouncing of watched remotes.
        public var watchTiming = RemoteWatchService.Timing()
        /// The tor manager's settings when `tor` is not `none`.
        public var torSettings: TorManager.Settings?
        /// Where repositories set up by `git annex enable-tor` are found.
        public var systemTorrc = "/etc/tor/torrc"
        /// How annex-tor-helper is run for `tor.enableSystem`.
        public var torHelper = TorHelperRunner()
        /// Mailbox, transit relay and SOCKS for pairing (PairingService).
        public var wormhole = Wormhole.Configuration(appID: Wormhole.gitAnnexAppID)
        /// The annexd executable, which git runs to reach peers when syncing (`annexd git-connect`).
        public var executable = Config.runningExecutable()
        public init(stateDir: String, socketPath: String, tor: String = "none", socksHost: String = "127.0.0.1", socksPort: Int = 9050) {
            self.stateDir = stateDir
            self.socketPath = socketPath
            self.tor = tor
            self.socksHost = socksHost
            self.socksPort = socksPort
        }

        /// This process's executable (/proc/self/exe), else its argv[0].
        public static func runningExecutable() -> String {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        }

        public static func defaultSocketPath() -> String {
            let env = ProcessInfo.processInfo.environment
            if let runtime = env["XDG_RUNTIME_DIR"], runtime.hasPrefix("/") { return runtime + "/annexd/rpc.sock" }
            return "/tmp/annexd-\(getuid())/rpc.sock"
        }
    }

}
