/// One command line to tor (control-spec §2.2 and §3), built from validated parts: no argument
/// can carry CR, LF or NUL into the line, so nothing can smuggle in a second command.
///
/// `description` never shows secrets: AUTHENTICATE's credential and ADD_ONION's key are
/// replaced by "[redacted]", so a command can be logged as is.
public struct TorControlCommand: Sendable, Equatable, CustomStringConvertible {
    /// The command word, upper case (e.g. "ADD_ONION"), used in errors.
    public let keyword: String
    /// The line without its CRLF.
    public let line: String
    /// The line to log.
    public let redactedLine: String

    /// A command from its keyword and already-encoded arguments. The keyword is letters and
    /// `_`; arguments must not contain CR, LF or NUL, nor be empty.
    public init(_ keyword: String, _ arguments: [String] = [], redacting secretArguments: Set<Int> = []) throws(TorControlError) {
        guard !keyword.isEmpty, keyword.unicodeScalars.allSatisfy({ ("A"..."Z").contains($0) || ("a"..."z").contains($0) || $0 == "_" }) else {
            throw .invalidArgument("command keyword \(String(reflecting: keyword)) must be letters and \"_\"")
        }
        for argument in arguments {
            guard !argument.isEmpty else { throw .invalidArgument("empty argument to \(keyword)") }
            try Self.requireNoLineBreaks(argument, what: "argument to \(keyword)")
        }
        self.keyword = keyword.uppercased()
        self.line = ([keyword] + arguments).joined(separator: " ")
        self.redactedLine = ([keyword] + arguments.enumerated().map { secretArguments.contains($0.offset) ? "[redacted]" : $0.element })
            .joined(separator: " ")
    }

    /// The bytes to send: the line and CRLF.
    public var wireBytes: [UInt8] { Array(line.utf8) + [0x0D, 0x0A] }

    public var description: String { redactedLine }

    public static func == (a: TorControlCommand, b: TorControlCommand) -> Bool { a.line == b.line }

    // MARK: Builders

    /// `PROTOCOLINFO 1`: auth methods, cookie file, tor version. Allowed once before AUTHENTICATE.
    public static let protocolInfo = fixed("PROTOCOLINFO", ["1"])

    /// `AUTHCHALLENGE SAFECOOKIE <client nonce hex>`.
    public static func authChallenge(clientNonce: [UInt8]) throws(TorControlError) -> TorControlCommand {
        guard !clientNonce.isEmpty else { throw .invalidArgument("the SAFECOOKIE client nonce is empty") }
        return try TorControlCommand("AUTHCHALLENGE", ["SAFECOOKIE", Hex.encode(clientNonce)])
    }

    /// `AUTHENTICATE <hex>`: the cookie (COOKIE) or the client hash (SAFECOOKIE).
    public static func authenticate(hex bytes: [UInt8]) throws(TorControlError) -> TorControlCommand {
        guard !bytes.isEmpty else { throw .invalidArgument("empty authentication token") }
        return try TorControlCommand("AUTHENTICATE", [Hex.encode(bytes)], redacting: [0])
    }

    /// `AUTHENTICATE "<password>"` (HASHEDPASSWORD).
    public static func authenticate(password: String) throws(TorControlError) -> TorControlCommand {
        try TorControlCommand("AUTHENTICATE", [TorQuotedString.encode(password)], redacting: [0])
    }

    /// `AUTHENTICATE` with no credential (NULL).
    public static let authenticateNull = fixed("AUTHENTICATE", [])

    /// `GETINFO key…`. Keys are tor's names (`version`, `status/bootstrap-phase`, `onions/current`).
    public static func getInfo(_ keys: [String]) throws(TorControlError) -> TorControlCommand {
        guard !keys.isEmpty else { throw .invalidArgument("GETINFO needs at least one key") }
        for key in keys { try requireWord(key, what: "GETINFO key") }
        return try TorControlCommand("GETINFO", keys)
    }

    /// `SETEVENTS name…` (an empty list turns all events off). Names are letters and `_`.
    public static func setEvents(_ names: [String]) throws(TorControlError) -> TorControlCommand {
        for name in names {
            guard !name.isEmpty, name.unicodeScalars.allSatisfy({ ("A"..."Z").contains($0) || ("a"..."z").contains($0) || $0 == "_" }) else {
                throw .invalidArgument("event name \(String(reflecting: name)) must be letters and \"_\" (e.g. HS_DESC, STATUS_CLIENT)")
            }
        }
        return try TorControlCommand("SETEVENTS", names)
    }

    /// `ADD_ONION ED25519-V3:<key> [Flags=…] [MaxStreams=N] Port=…`: serve `key`'s address.
    public static func addOnion(key: OnionKey, ports: [TorOnionPort], flags: [TorOnionFlag] = [],
                                maxStreams: Int? = nil) throws(TorControlError) -> TorControlCommand {
        try addOnion(keyArgument: key.addOnionKeyBlob, secret: true, ports: ports, flags: flags, maxStreams: maxStreams)
    }

    /// `ADD_ONION NEW:ED25519-V3 …`: tor makes the key (returned unless `.discardPK`).
    public static func addOnionNewKey(ports: [TorOnionPort], flags: [TorOnionFlag] = [],
                                      maxStreams: Int? = nil) throws(TorControlError) -> TorControlCommand {
        try addOnion(keyArgument: "NEW:ED25519-V3", secret: false, ports: ports, flags: flags, maxStreams: maxStreams)
    }

    private static func addOnion(keyArgument: String, secret: Bool, ports: [TorOnionPort], flags: [TorOnionFlag],
                                 maxStreams: Int?) throws(TorControlError) -> TorControlCommand {
        guard !ports.isEmpty else { throw .invalidArgument("ADD_ONION needs at least one port") }
        var arguments = [keyArgument]
        var unique: [TorOnionFlag] = []
        for flag in flags where !unique.contains(flag) { unique.append(flag) }
        if !unique.isEmpty { arguments.append("Flags=" + unique.map(\.rawValue).joined(separator: ",")) }
        if let maxStreams {
            guard (0...65535).contains(maxStreams) else { throw .invalidArgument("MaxStreams must be 0...65535, not \(maxStreams)") }
            arguments.append("MaxStreams=\(maxStreams)")
        }
        arguments += ports.map(\.argument)
        return try TorControlCommand("ADD_ONION", arguments, redacting: secret ? [0] : [])
    }

    /// `DEL_ONION <service id>`; the address may be given with or without ".onion".
    public static func delOnion(_ serviceID: String) throws(TorControlError) -> TorControlCommand {
        try TorControlCommand("DEL_ONION", [validServiceID(serviceID)])
    }

    /// `TAKEOWNERSHIP`: tor exits when this control connection closes.
    public static let takeOwnership = fixed("TAKEOWNERSHIP", [])

    /// `SIGNAL <name>`.
    public static func signal(_ signal: TorSignal) -> TorControlCommand { fixed("SIGNAL", [signal.rawValue]) }

    /// `SETCONF key=value…`; a nil value resets the option to 0/empty (use RESETCONF for defaults).
    /// Values are sent as QuotedStrings.
    public static func setConf(_ settings: [(key: String, value: String?)]) throws(TorControlError) -> TorControlCommand {
        guard !settings.isEmpty else { throw .invalidArgument("SETCONF needs at least one option") }
        var arguments: [String] = []
        for (key, value) in settings {
            try requireOptionName(key)
            if let value { arguments.append(key + "=" + (try TorQuotedString.encode(value))) } else { arguments.append(key) }
        }
        return try TorControlCommand("SETCONF", arguments)
    }

    /// `RESETCONF key…`: options back to their defaults.
    public static func resetConf(_ keys: [String]) throws(TorControlError) -> TorControlCommand {
        guard !keys.isEmpty else { throw .invalidArgument("RESETCONF needs at least one option") }
        for key in keys { try requireOptionName(key) }
        return try TorControlCommand("RESETCONF", keys)
    }

    /// `GETCONF key…`.
    public static func getConf(_ keys: [String]) throws(TorControlError) -> TorControlCommand {
        guard !keys.isEmpty else { throw .invalidArgument("GETCONF needs at least one option") }
        for key in keys { try requireOptionName(key) }
        return try TorControlCommand("GETCONF", keys)
    }

    /// `QUIT`: tor answers "250 closing connection" and closes.
    public static let quit = fixed("QUIT", [])

    // MARK: Validation

    private static func fixed(_ keyword: String, _ arguments: [String]) -> TorControlCommand {
        do { return try TorControlCommand(keyword, arguments) } catch { preconditionFailure("\(error)") }
    }

    static func requireNoLineBreaks(_ text: String, what: String) throws(TorControlError) {
        if text.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) {
            throw .invalidArgument("\(what) \(String(reflecting: text)) contains CR, LF or NUL")
        }
    }

    /// One space-free word of printable ASCII, no quotes.
    static func requireWord(_ text: String, what: String) throws(TorControlError) {
        try requireNoLineBreaks(text, what: what)
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") }) else {
            throw .invalidArgument("\(what) \(String(reflecting: text)) must be one word of printable ASCII without quotes")
        }
    }

    static func requireOptionName(_ key: String) throws(TorControlError) {
        guard !key.isEmpty, key.unicodeScalars.allSatisfy({
            ("A"..."Z").contains($0) || ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_"
        }) else {
            throw .invalidArgument("tor option name \(String(reflecting: key)) must be letters, digits and \"_\"")
        }
    }

    /// A v3 service id: 56 base32 characters (".onion" stripped), lower-cased.
    static func validServiceID(_ text: String) throws(TorControlError) -> String {
        try requireNoLineBreaks(text, what: "service id")
        var id = Substring(text.lowercased())
        if id.hasSuffix(".onion") { id = id.dropLast(6) }
        guard OnionKey.isValidAddress(String(id)) else {
            throw .invalidArgument("\(String(reflecting: text)) is not a v3 onion service id (56 base32 characters, with or without \".onion\")")
        }
        return String(id)
    }
}

/// One `Port=VIRTPORT[,TARGET]` of ADD_ONION: what a connection to the onion's virtual port reaches.
public struct TorOnionPort: Sendable, Equatable, CustomStringConvertible {
    public enum Target: Sendable, Equatable {
        /// A unix socket: an absolute path of at most 107 bytes (tor accepts longer or relative
        /// paths silently, and they never work).
        case unix(String)
        /// A TCP address: an IPv4 or IPv6 literal or a host name, and a port.
        case tcp(host: String, port: Int)
    }

    /// The longest unix socket path Linux can bind/connect (sun_path is 108 bytes with the NUL).
    public static let maxUnixPathBytes = 107

    public let virtualPort: Int
    /// nil: the same port on 127.0.0.1 (tor's default).
    public let target: Target?

    public init(virtualPort: Int, target: Target? = nil) throws(TorControlError) {
        guard (1...65535).contains(virtualPort) else {
            throw .invalidArgument("onion virtual port must be 1...65535, not \(virtualPort)")
        }
        switch target {
        case .unix(let path)?:
            try TorControlCommand.requireNoLineBreaks(path, what: "unix socket path")
            guard path.hasPrefix("/") else {
                throw .invalidArgument("unix socket path \(String(reflecting: path)) must be absolute (tor accepts a relative one silently, and it never works)")
            }
            guard path.utf8.count <= Self.maxUnixPathBytes else {
                throw .invalidArgument("unix socket path \(String(reflecting: path)) is \(path.utf8.count) bytes; the limit is \(Self.maxUnixPathBytes): use a shorter directory (e.g. under $XDG_RUNTIME_DIR)")
            }
            guard !path.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F || $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") }) else {
                throw .invalidArgument("unix socket path \(String(reflecting: path)) must not contain spaces, control characters, commas or quotes (ADD_ONION cannot carry them)")
            }
        case .tcp(let host, let port)?:
            guard (1...65535).contains(port) else { throw .invalidArgument("onion target port must be 1...65535, not \(port)") }
            try TorControlCommand.requireWord(host, what: "onion target host")
            guard !host.contains(","), !host.hasPrefix("unix:") else {
                throw .invalidArgument("onion target host \(String(reflecting: host)) must not contain commas or start with unix:")
            }
        case nil:
            break
        }
        self.virtualPort = virtualPort
        self.target = target
    }

    /// `Port=80,unix:/run/x.sock`, `Port=80,127.0.0.1:8080`, `Port=80,[::1]:8080` or `Port=80`.
    public var argument: String {
        switch target {
        case .unix(let path)?:
            return "Port=\(virtualPort),unix:\(path)"
        case .tcp(let host, let port)?:
            let h = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
            return "Port=\(virtualPort),\(h):\(port)"
        case nil:
            return "Port=\(virtualPort)"
        }
    }

    public var description: String { argument }
}

/// ADD_ONION's Flags.
public enum TorOnionFlag: String, Sendable, Equatable, CaseIterable {
    /// Do not return a key tor generated.
    case discardPK = "DiscardPK"
    /// Keep the service after this control connection closes (until DEL_ONION or tor exits).
    case detach = "Detach"
    /// Require v3 client authorization.
    case v3Auth = "V3Auth"
    /// A single onion service (tor must be in non-anonymous mode).
    case nonAnonymous = "NonAnonymous"
    /// Close the circuit when MaxStreams is reached.
    case maxStreamsCloseCircuit = "MaxStreamsCloseCircuit"
}

/// SIGNAL's names (control-spec §3.7).
public enum TorSignal: String, Sendable, Equatable, CaseIterable {
    case reload = "RELOAD", shutdown = "SHUTDOWN", dump = "DUMP", debug = "DEBUG", halt = "HALT"
    case newnym = "NEWNYM", clearDNSCache = "CLEARDNSCACHE", heartbeat = "HEARTBEAT"
    case active = "ACTIVE", dormant = "DORMANT"
}
