/// Where git-annex enable-tor puts a repository's hidden service (Utility/Tor.hs,
/// app name `tor-annex`), so that git-annex's remotedaemon and annexd serve the same one:
///
///     HiddenServiceDir /var/lib/tor/tor-annex_<uid>_<uuid>
///     HiddenServicePort <port> unix:/var/lib/tor-annex/<uid>_<uuid>/s
///
/// git-annex also creates `/var/lib/tor-annex/<uid>_<uuid>` (parents as needed), owned by
/// the uid with its group unchanged, and adds u+rwx to its mode.
public struct EnableTorLayout: Sendable, Equatable {
    public static let appName = "tor-annex"
    public static let defaultTorDataRoot = "/var/lib/tor"
    public static let defaultSocketRoot = "/var/lib/tor-annex"
    /// git-annex picks a random port in this range, unused by other hidden services.
    public static let randomPortRange = 1025...65534

    public var torDataRoot: String
    public var socketRoot: String
    public var uid: UInt32
    public var repoUUID: String

    public init(torDataRoot: String = Self.defaultTorDataRoot, socketRoot: String = Self.defaultSocketRoot,
                uid: UInt32, repoUUID: String) {
        self.torDataRoot = torDataRoot
        self.socketRoot = socketRoot
        self.uid = uid
        self.repoUUID = repoUUID
    }

    var ident: String { "\(uid)_\(repoUUID)" }

    public var hiddenServiceDir: String { Self.join(torDataRoot, "\(Self.appName)_\(ident)") }
    public var hostnameFile: String { hiddenServiceDir + "/hostname" }
    public var socketDir: String { Self.join(socketRoot, ident) }
    public var socketFile: String { socketDir + "/s" }

    public func port(_ port: Int) -> HiddenServicePort {
        HiddenServicePort(virtualPort: port, target: "unix:" + socketFile)
    }

    static func join(_ dir: String, _ name: String) -> String {
        dir == "/" ? "/" + name : dir + "/" + name
    }
}
