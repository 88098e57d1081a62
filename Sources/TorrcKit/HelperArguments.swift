/// annex-tor-helper's command line, parsed strictly and without I/O: one command, then
/// `--flag value` pairs. Unknown flags, flags the command does not take, repeated flags,
/// missing values and `--flag=value` forms are refused. Every value is validated.
public enum HelperCommand: String, Sendable, CaseIterable {
    case addHiddenService = "add-hidden-service"
    case removeHiddenService = "remove-hidden-service"
    case enableControlSocket = "enable-control-socket"

    var required: Set<String> {
        switch self {
        case .addHiddenService, .removeHiddenService: ["--uid", "--repo-uuid"]
        case .enableControlSocket: ["--group"]
        }
    }

    var allowed: Set<String> {
        let common: Set = ["--torrc", "--defaults-torrc", "--tor-data-root", "--reload-command", "--timeout"]
        switch self {
        case .addHiddenService: return common.union(["--uid", "--repo-uuid", "--port", "--socket-root"])
        case .removeHiddenService: return common.union(["--uid", "--repo-uuid", "--socket-root"])
        case .enableControlSocket: return common.union(["--group", "--control-socket"])
        }
    }
}

public struct HelperOptions: Sendable, Equatable {
    public static let defaultControlSocket = "/run/tor/control"
    public static let defaultTimeout = 120

    public var command: HelperCommand
    public var uid: UInt32?
    public var repoUUID: String?
    public var port: Int?
    public var group: String?
    public var controlSocket: String = Self.defaultControlSocket
    /// nil: the system torrc (the first of /etc/tor/torrc, /etc/torrc, /usr/local/etc/tor/torrc).
    public var torrc: String?
    /// nil: Debian's /usr/share/tor/tor-service-defaults-torrc when it exists.
    public var defaultsTorrc: String?
    public var torDataRoot: String = EnableTorLayout.defaultTorDataRoot
    public var socketRoot: String = EnableTorLayout.defaultSocketRoot
    /// nil: systemctl reload tor@default under systemd, else SIGHUP to /run/tor/tor.pid.
    public var reloadCommand: [String]?
    public var timeout: Int = Self.defaultTimeout

    public init(command: HelperCommand) { self.command = command }

    /// The enable-tor layout for uid and uuid (add/remove commands only).
    public var layout: EnableTorLayout? {
        guard let uid, let repoUUID else { return nil }
        return EnableTorLayout(torDataRoot: torDataRoot, socketRoot: socketRoot, uid: uid, repoUUID: repoUUID)
    }

    public var cookieFile: String {
        let dir = controlSocket.split(separator: "/").dropLast().joined(separator: "/")
        return "/" + dir + (dir.isEmpty ? "" : "/") + "control.authcookie"
    }
}

public enum HelperInvocation: Sendable, Equatable {
    case help
    case run(HelperOptions)

    /// Parses the arguments after the program name.
    public static func parse(_ args: [String]) throws(HelperFailure) -> HelperInvocation {
        guard let first = args.first else { throw .usage("no command given (try --help)") }
        if args == ["--help"] || args == ["-h"] || args == ["help"] { return .help }
        guard let command = HelperCommand(rawValue: first) else {
            throw .usage("unknown command \(HelperValidation.quoted(first)) (try --help)")
        }
        let pairs = try flagPairs(Array(args.dropFirst()), allowed: command.allowed, command: command)
        if let missing = command.required.subtracting(pairs.keys).sorted().first {
            throw .usage("\(command.rawValue) needs \(missing)")
        }
        var options = HelperOptions(command: command)
        for (flag, value) in pairs.sorted(by: { $0.key < $1.key }) { try apply(flag, value, to: &options) }
        if let layout = options.layout { _ = try HelperValidation.socketPath(layout.socketFile) }
        if command == .enableControlSocket {
            _ = try HelperValidation.socketPath(options.controlSocket)
            guard options.controlSocket != "/" else { throw .invalid("--control-socket cannot be /") }
        }
        return .run(options)
    }

    static func flagPairs(_ args: [String], allowed: Set<String>, command: HelperCommand) throws(HelperFailure) -> [String: String] {
        var pairs: [String: String] = [:]
        var i = 0
        while i < args.count {
            let flag = args[i]
            guard allowed.contains(flag) else {
                throw .usage("\(command.rawValue) does not take \(HelperValidation.quoted(flag))")
            }
            guard pairs[flag] == nil else { throw .usage("\(flag) given twice") }
            guard i + 1 < args.count else { throw .usage("\(flag) needs a value") }
            pairs[flag] = args[i + 1]
            i += 2
        }
        return pairs
    }

    static func apply(_ flag: String, _ value: String, to o: inout HelperOptions) throws(HelperFailure) {
        switch flag {
        case "--uid": o.uid = try HelperValidation.uid(value)
        case "--repo-uuid": o.repoUUID = try HelperValidation.repoUUID(value)
        case "--port": o.port = try HelperValidation.port(value)
        case "--group": o.group = try HelperValidation.groupName(value)
        case "--control-socket": o.controlSocket = try HelperValidation.absolutePath(value, flag: flag)
        case "--torrc": o.torrc = try HelperValidation.absolutePath(value, flag: flag)
        case "--defaults-torrc": o.defaultsTorrc = try HelperValidation.absolutePath(value, flag: flag)
        case "--tor-data-root": o.torDataRoot = try HelperValidation.absolutePath(value, flag: flag)
        case "--socket-root": o.socketRoot = try HelperValidation.absolutePath(value, flag: flag)
        case "--reload-command": o.reloadCommand = try HelperValidation.reloadCommand(value)
        case "--timeout": o.timeout = try HelperValidation.timeout(value)
        default: throw .usage("unknown flag \(flag)")
        }
    }

    public static let usageText = """
        annex-tor-helper: edit the system torrc for annexd (run as root through pkexec, su or sudo; never setuid)

        usage:
          annex-tor-helper add-hidden-service --uid N --repo-uuid U [--port P]
          annex-tor-helper remove-hidden-service --uid N --repo-uuid U
          annex-tor-helper enable-control-socket --group G [--control-socket PATH]
          annex-tor-helper --help

        add-hidden-service writes git-annex enable-tor's layout:
          HiddenServiceDir <tor-data-root>/tor-annex_<uid>_<uuid>
          HiddenServicePort <port> unix:<socket-root>/<uid>_<uuid>/s
        creates <socket-root>/<uid>_<uuid> owned by uid, reloads tor and waits for the hostname.
        Without --port, a random unused port in 1025-65534 (as git-annex does).
        remove-hidden-service removes that block; the HiddenServiceDir (the onion's key) and
        the socket directory are kept, so adding it again restores the same address.
        enable-control-socket adds ControlSocket PATH (default /run/tor/control) with
        GroupWritable, CookieAuthentication 1, CookieAuthFileGroupReadable 1 and a cookie file
        beside the socket. G must be tor's group (the group of the tor data root; Debian:
        debian-tor): tor gives the socket and cookie its own group, so members of G can use them.
        The socket's directory must belong to tor's user and group (created 02750 if missing).

        overrides (tests, other layouts): every path absolute and normalized
          --torrc PATH            default: first of /etc/tor/torrc, /etc/torrc, /usr/local/etc/tor/torrc
          --defaults-torrc PATH   passed to tor --verify-config (default: Debian's service defaults if present)
          --tor-data-root DIR     default /var/lib/tor
          --socket-root DIR       default /var/lib/tor-annex
          --reload-command CMD    split on single spaces into argv, no shell (default: systemctl reload
                                  tor@default under systemd, else SIGHUP to the pid in /run/tor/tor.pid)
          --timeout SECONDS       wait for tor (default 120)

        Each command: validate arguments, parse torrc, write a temp file, tor --verify-config,
        back up the torrc (<torrc>.annex-tor-helper.bak), rename atomically, reload tor, wait;
        on any failure after the rename, restore the old torrc and reload again.
        Result: one JSON object on stdout ({"ok":true,...} or {"ok":false,"error":...,"reason":...}).

        exit codes:
        \(HelperReason.exitCodeTable)
        """
}
